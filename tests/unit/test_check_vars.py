"""plugins/action/raykit_check_vars.py: every public variable's value checked against the roles'
argument specs and the rules a spec cannot say (ports, versions, CPUs, memory, pins)."""

from __future__ import annotations

from typing import Any

import pytest

from support import REPO, load_by_path

cv = load_by_path(REPO / "plugins" / "action" / "raykit_check_vars.py", "raykit_check_vars")
SPECS = cv.load_specs(REPO / "roles")
PORTS = cv.default_ports(REPO / "roles")


def why(name: str, value: Any) -> str:
    result: str = cv.check_value(name, value, SPECS[name], PORTS)
    return result


def test_every_role_spec_is_loaded() -> None:
    for name in ("ray_node_auth_mode", "raykit_ports", "prometheus_source", "grafana_enabled"):
        assert name in SPECS


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ray_node_auth_mode", "tokn", "must be one of: token, disabled, got: tokn"),
        ("ray_node_restart", "sometimes", "must be one of: no, on-success"),
        ("raykit_python_source", "sources", "must be one of: source, standalone, system"),
        ("prometheus_source", "package", "must be one of: tarball, distro"),
        ("ray_node_start_timeout", "soon", "ray_node_start_timeout"),
        ("ray_node_start_timeout", 0, "must be at least 1"),
        ("ray_node_restart_sec", -1, "must be 0 or more"),
        ("grafana_enabled", "maybe", "grafana_enabled"),
        ("ray_node_num_cpus", "abc", "whole number of CPUs"),
        ("ray_node_num_cpus", 1.5, "whole number of CPUs"),
        ("ray_node_object_store_memory", 10, "75 MiB, Ray's minimum"),
        ("ray_node_object_store_memory", "lots", "number of bytes"),
        ("raykit_python_version", "3.13", "major.minor.micro"),
        ("raykit_python_version", 3.13, "major.minor.micro"),  # YAML reads 3.13 as a float
        ("raykit_ray_version", "2.60", "major.minor.micro"),
        ("raykit_prometheus_version", "latest", "major.minor.micro"),
        ("raykit_grafana_version", "12.4", "major.minor.micro"),
        ("raykit_grafana_sha256", {"12.4.2": {"amd64": "f00"}}, "12.4.2.amd64: 'f00'"),
        ("raykit_python_source_sha256", {"3.13.5": "abc"}, "not sha256 hex digests: 3.13.5"),
        ("raykit_prometheus_sha256", {"3.11.2": {"amd64": "0"}}, "3.11.2.amd64: '0'"),
        ("raykit_firewall", "iptables", "must be one of: auto, nftables, none"),
        ("ray_node_gcs_ft", "redis", "must be one of: none, rocksdb"),
        ("ray_node_gcs_reconnect_timeout", 0, "must be at least 1"),
        ("ray_node_liveness_check_interval", 0, "must be at least 1"),
        ("raykit_tls", "maybe", "raykit_tls"),
        ("raykit_tls_days", 0, "must be at least 1"),
        ("raykit_firewall", False, "must be one of: auto, nftables, none"),
        ("raykit_trusted_addresses", ["10.0.0.300"], "holds '10.0.0.300': each must be"),
        ("raykit_trusted_addresses", ["10.0.0.1/8"], "holds '10.0.0.1/8'"),  # host bits set
        ("raykit_trusted_addresses", ["lab-laptop"], "CIDR form"),
    ],
)
def test_bad_values_are_named(name: str, value: Any, expected: str) -> None:
    assert expected in why(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ray_node_auth_mode", "token"),
        ("ray_node_auth_mode", "disabled"),
        ("ray_node_restart", "no"),
        ("ray_node_start_timeout", "30"),  # -e gives strings
        ("ray_node_num_cpus", ""),
        ("ray_node_num_cpus", 2),
        ("ray_node_num_cpus", "0"),
        ("ray_node_object_store_memory", 512 * 1024 * 1024),
        ("ray_node_object_store_memory", ""),
        ("raykit_python_version", "3.13.5"),
        ("raykit_python_version", "3.14.0rc1"),
        ("raykit_ray_version", "2.61.0rc0"),
        ("raykit_prometheus_version", "2.42.0+debian-repack"),
        ("raykit_ports", dict(PORTS)),
        ("raykit_python_source_sha256", {"3.13.5": "93e5" + "0" * 60}),
        ("raykit_firewall", "none"),
        ("ray_node_gcs_ft", "rocksdb"),
        ("raykit_tls", "false"),  # -e gives strings
        ("raykit_trusted_addresses", []),
        ("raykit_trusted_addresses", "192.0.2.10,192.0.2.11"),  # -e gives a string
        ("raykit_trusted_addresses", ["192.0.2.10", "198.51.100.0/24", "2001:db8::/32"]),
    ],
)
def test_good_values_pass(name: str, value: Any) -> None:
    assert why(name, value) == ""


def test_the_port_map() -> None:
    assert "misses gcs" in why("raykit_ports", {"dashboard": 9999})
    assert "replaces the whole map" in why("raykit_ports", {"dashboard": 9999})
    assert "dashboard and gcs are both 6379" in why("raykit_ports", {**PORTS, "dashboard": 6379})
    assert "dashboard=80 is outside 1024-65535" in why("raykit_ports", {**PORTS, "dashboard": 80})
    assert "dashboard='web' is not a whole number" in why(
        "raykit_ports", {**PORTS, "dashboard": "web"}
    )
    assert "unknown port name(s) dashbord" in why("raykit_ports", {**PORTS, "dashbord": 1})
    assert "worker_min=11000 is above worker_max=10999" in why(
        "raykit_ports", {**PORTS, "worker_min": 11000}
    )
    assert "the worker range 10002-10999 holds gcs=10500" in why(
        "raykit_ports", {**PORTS, "gcs": 10500}
    )
    assert "unable to convert to dict" in why("raykit_ports", "6379")
    # Ports given as strings (-e, or quoted in YAML) are numbers too.
    assert why("raykit_ports", {k: str(v) for k, v in PORTS.items()}) == ""


def test_the_defaults_are_valid() -> None:
    """The kit's own defaults pass its own checks (the check could not fail a good kit)."""
    import yaml

    for path in (REPO / "roles").glob("*/defaults/main*"):
        files = sorted(path.glob("*.yml")) if path.is_dir() else [path]
        for f in files:
            for name, value in (yaml.safe_load(f.read_text()) or {}).items():
                if name in SPECS and not (isinstance(value, str) and "{{" in value):
                    assert why(name, value) == "", f"{f}: {name}={value!r}"


def test_problems_and_message_group_hosts_and_say_where() -> None:
    def source(name: str) -> str:
        return "with -e" if name == "ray_node_auth_mode" else "in the inventory"

    a = cv.problems({"ray_node_auth_mode": "tokn", "unrelated": 1}, SPECS, PORTS, source)
    b = cv.problems(
        {"ray_node_auth_mode": "tokn", "ray_node_num_cpus": "abc"}, SPECS, PORTS, source
    )
    assert [p["name"] for p in a] == ["ray_node_auth_mode"]
    text = cv.message({"n1": a, "n2": b}, 2)
    assert "ray_node_auth_mode = 'tokn' (set with -e; all 2 hosts): value of" in text
    assert "ray_node_num_cpus = 'abc' (set in the inventory; n2): must be a whole number" in text
    assert text.startswith("Invalid value(s); nothing has been changed on any host")
    assert "Fix: correct each value where it was set" in text
