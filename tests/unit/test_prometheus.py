"""The prometheus role without hosts: the targets filter, the pins, the port, the templates."""

from __future__ import annotations

import re
from typing import Any

import jinja2
import pytest
import yaml

from support import REPO, load_by_path

ROLE = REPO / "roles" / "prometheus"
targets_filter = load_by_path(ROLE / "filter_plugins" / "prometheus.py", "prometheus_filters")
PORTS = yaml.safe_load((REPO / "roles/raykit/defaults/main/ports.yml").read_text())["raykit_ports"]
VERSIONS = yaml.safe_load((REPO / "roles/raykit/defaults/main/versions.yml").read_text())


def hostvars(**addresses: str) -> dict[str, dict[str, Any]]:
    return {h: {"raykit_node_address": a} for h, a in addresses.items()}


# ---------------------------------------------------------------------------- targets


def test_every_node_and_the_heads_extra_endpoints_labelled() -> None:
    groups = {"ray_head": ["h"], "ray_worker": ["w1", "w2"], "monitoring": ["h"]}
    out = targets_filter.prometheus_targets(
        groups, hostvars(h="10.0.0.1", w1="10.0.0.2", w2="10.0.0.3"), PORTS
    )
    assert out == [
        {"targets": ["10.0.0.1:8080"], "labels": {"host": "h", "role": "head", "exporter": "node"}},
        {
            "targets": ["10.0.0.1:44217"],
            "labels": {"host": "h", "role": "head", "exporter": "autoscaler"},
        },
        {
            "targets": ["10.0.0.1:44227"],
            "labels": {"host": "h", "role": "head", "exporter": "dashboard"},
        },
        {
            "targets": ["10.0.0.2:8080"],
            "labels": {"host": "w1", "role": "worker", "exporter": "node"},
        },
        {
            "targets": ["10.0.0.3:8080"],
            "labels": {"host": "w2", "role": "worker", "exporter": "node"},
        },
    ]


def test_the_ports_come_from_the_port_map() -> None:
    ports = {**PORTS, "metrics_export": 9999, "autoscaler_metrics": 1, "dashboard_metrics": 2}
    out = targets_filter.prometheus_targets({"ray_head": ["h"]}, hostvars(h="10.0.0.1"), ports)
    assert [t["targets"][0] for t in out] == ["10.0.0.1:9999", "10.0.0.1:1", "10.0.0.1:2"]


def test_no_workers_or_no_worker_group() -> None:
    for groups in ({"ray_head": ["h"]}, {"ray_head": ["h"], "ray_worker": []}):
        out = targets_filter.prometheus_targets(groups, hostvars(h="10.0.0.1"), PORTS)
        assert {t["labels"]["role"] for t in out} == {"head"}
        assert len(out) == 3


def test_adding_a_worker_only_appends() -> None:
    """Inventory order, head first: a new host adds entries and moves no existing one."""
    hv = hostvars(h="10.0.0.1", w1="10.0.0.2", w2="10.0.0.3")
    before = targets_filter.prometheus_targets({"ray_head": ["h"], "ray_worker": ["w1"]}, hv, PORTS)
    after = targets_filter.prometheus_targets(
        {"ray_head": ["h"], "ray_worker": ["w1", "w2"]}, hv, PORTS
    )
    assert after[: len(before)] == before
    new = {"host": "w2", "role": "worker", "exporter": "node"}
    assert after[len(before) :] == [{"targets": ["10.0.0.3:8080"], "labels": new}]


def test_a_host_in_both_groups_is_listed_once() -> None:
    out = targets_filter.prometheus_targets(
        {"ray_head": ["h"], "ray_worker": ["h"]}, hostvars(h="10.0.0.1"), PORTS
    )
    assert len(out) == 3


@pytest.mark.parametrize("vars_", [{}, {"raykit_node_address": ""}, {"raykit_node_address": None}])
def test_a_node_without_an_address_is_named(vars_: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^w has no raykit_node_address"):
        targets_filter.prometheus_targets(
            {"ray_head": ["h"], "ray_worker": ["w"]},
            {"h": {"raykit_node_address": "10.0.0.1"}, "w": vars_},
            PORTS,
        )


def test_the_filter_is_registered() -> None:
    filters = targets_filter.FilterModule().filters()
    assert filters == {"raykit_prometheus_targets": targets_filter.prometheus_targets}


# ---------------------------------------------------------------------------- pins and ports


def test_prometheus_has_its_port_in_the_map() -> None:
    assert PORTS["prometheus"] == 9090


def test_the_pinned_prometheus_has_a_sha256_per_architecture() -> None:
    version = VERSIONS["raykit_prometheus_version"]
    assert isinstance(version, str) and re.fullmatch(r"\d+\.\d+\.\d+", version)
    sums = VERSIONS["raykit_prometheus_sha256"][version]
    assert set(sums) == {"amd64", "arm64"}
    for digest in sums.values():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert len(set(sums.values())) == 2


def test_the_mirrors_serve_the_release_directory() -> None:
    mirrors = VERSIONS["raykit_prometheus_mirrors"]
    assert mirrors and all(not m.endswith("/") for m in mirrors)
    assert mirrors[0] == (
        "https://github.com/prometheus/prometheus/releases/download/"
        "v{{ raykit_prometheus_version }}"
    )


# ---------------------------------------------------------------------------- templates


def render(template: str, **variables: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["comment"] = lambda text: "#\n# " + text + "\n#"
    env.filters["to_nice_yaml"] = lambda data, indent=2: yaml.safe_dump(
        data, indent=indent, default_flow_style=False, sort_keys=False
    )
    env.filters["quote"] = lambda s: s
    return env.get_template(template).render(ansible_managed="Ansible managed", **variables)


CONFIG_VARS: dict[str, Any] = {
    "raykit_cluster_name": "lab",
    "prometheus_scrape_interval": "10s",
    "_prometheus_targets_file": "/etc/prometheus/raykit/targets/ray.json",
    "_prometheus_listen": "10.0.0.1:9090",
    "prometheus_extra_scrape_configs": [],
}


def test_the_configuration_reads_the_targets_file() -> None:
    config = yaml.safe_load(render("prometheus.yml.j2", **CONFIG_VARS))
    assert config["global"] == {"scrape_interval": "10s", "evaluation_interval": "10s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["ray"]["file_sd_configs"] == [
        {"files": ["/etc/prometheus/raykit/targets/ray.json"]}
    ]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["10.0.0.1:9090"]}]


def test_extra_scrape_configs_are_appended() -> None:
    extra = [{"job_name": "node", "static_configs": [{"targets": ["10.0.0.1:9100"]}]}]
    config = yaml.safe_load(
        render("prometheus.yml.j2", **{**CONFIG_VARS, "prometheus_extra_scrape_configs": extra})
    )
    assert [j["job_name"] for j in config["scrape_configs"]] == ["ray", "prometheus", "node"]
    assert config["scrape_configs"][-1] == extra[0]


def test_the_unit_is_hardened_and_writes_only_its_data() -> None:
    unit = render(
        "raykit-prometheus.service.j2",
        raykit_cluster_name="lab",
        _prometheus_user="prometheus",
        _prometheus_bin_dir="/opt/raykit/prometheus/3.11.1",
        _prometheus_args=["--config.file=/etc/prometheus/raykit/prometheus.yml"],
        prometheus_data_dir="/var/lib/prometheus/raykit",
    )
    lines = unit.splitlines()
    assert lines[0] == "#"  # ansible_managed, commented
    for line in (
        "User=prometheus",
        "ExecStart=/opt/raykit/prometheus/3.11.1/prometheus "
        "--config.file=/etc/prometheus/raykit/prometheus.yml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=always",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/prometheus/raykit",
        "ProtectHome=true",
        "PrivateTmp=true",
    ):
        assert line in lines
    assert [ln for ln in lines if ln.startswith("ReadWritePaths=")] == [
        "ReadWritePaths=/var/lib/prometheus/raykit"
    ]


def test_the_head_env_points_ray_at_prometheus() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "roles" / "ray_node" / "templates"),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["comment"] = lambda text: "# " + text
    env.filters["bool"] = bool
    common = {
        "ansible_managed": "Ansible managed",
        "_ray_node_token_file": "/etc/raykit/auth_token",
        "_ray_node_home": "/var/lib/raykit",
        "raykit_node_address": "10.0.0.1",
        "ray_node_auth_mode": "token",
        "raykit_prometheus_url": "http://10.0.0.9:9090",
        "raykit_prometheus_datasource_name": "Prometheus",
        "raykit_tls": False,
        "ray_node_gcs_ft": "none",
        "ray_node_gcs_reconnect_timeout": 120,
        "ray_node_liveness_check_interval": 5,
    }
    template = env.get_template("ray.env.j2")
    head = template.render(**common, raykit_monitoring_enabled=True, _ray_node_is_head=True)
    assert "RAY_PROMETHEUS_HOST=http://10.0.0.9:9090" in head.splitlines()
    assert "RAY_PROMETHEUS_NAME=Prometheus" in head.splitlines()
    worker = template.render(**common, raykit_monitoring_enabled=True, _ray_node_is_head=False)
    off = template.render(**common, raykit_monitoring_enabled=False, _ray_node_is_head=True)
    assert "RAY_PROMETHEUS" not in worker
    assert "RAY_PROMETHEUS" not in off


def test_the_playbook_defaults_to_the_head() -> None:
    plays = yaml.safe_load((REPO / "playbooks" / "monitoring.yml").read_text())
    (play,) = [p for p in plays if p["name"] == "Monitoring | Prometheus"]
    env = jinja2.Environment()
    env.filters["ternary"] = lambda value, yes, no: yes if value else no
    hosts = env.from_string(play["hosts"])
    assert hosts.render(groups={"ray_head": ["h"], "monitoring": []}) == "ray_head"
    assert hosts.render(groups={"ray_head": ["h"]}) == "ray_head"
    assert hosts.render(groups={"ray_head": ["h"], "monitoring": ["m"]}) == "monitoring"


def test_site_runs_monitoring_after_the_cluster() -> None:
    # Monitoring reads every node's preflight facts and scrapes running nodes; only the
    # runner's access file (which names Prometheus) comes after it.
    site = yaml.safe_load((REPO / "site.yml").read_text())
    books = [step["ansible.builtin.import_playbook"] for step in site]
    assert books[-2:] == ["playbooks/monitoring.yml", "playbooks/access.yml"]
    assert books.index("playbooks/cluster.yml") < books.index("playbooks/monitoring.yml")


def test_the_readme_lists_every_default() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    readme = (ROLE / "README.md").read_text()
    for name in defaults:
        assert re.search(rf"(?m)^{re.escape(name)}:", readme), name
