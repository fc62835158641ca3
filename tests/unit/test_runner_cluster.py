"""Finding a deployed cluster from its inventory, reaching it, and the job protocol: no hosts."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from raykit import cluster, jobs
from raykit.cluster import ClusterError

TOKEN = "f" * 64


def inventory_json(
    head: list[str] | None = None, workers: list[str] | None = None, **head_vars: Any
) -> dict[str, Any]:
    head = ["node1"] if head is None else head
    workers = ["node2", "node3"] if workers is None else workers
    hostvars = {h: {"ansible_host": f"10.0.0.{i + 1}"} for i, h in enumerate(head + workers)}
    if head:
        hostvars[head[0]].update(head_vars)
    return {
        "_meta": {"hostvars": hostvars},
        "all": {"children": ["ungrouped", "ray_head", "ray_worker", "monitoring"]},
        "ray_head": {"hosts": head},
        # Workers reached through a child group, as an inventory may nest them.
        "ray_worker": {"children": ["gpu"]} if workers else {},
        "gpu": {"hosts": workers},
    }


def write_access(sdir: Path, nodes: list[str], head: str = "node1", **extra: Any) -> Path:
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "ray_auth_token").write_text(TOKEN + "\n")
    access = {
        "schema": 1,
        "cluster_name": "lab",
        "head": head,
        "dashboard_url": "http://10.0.0.1:8265",
        "prometheus_url": "http://10.0.0.1:9090",
        "monitoring_host": head,
        "token_file": str(sdir / "ray_auth_token"),
        "python": "3.13.5",
        "ray": "2.60.0",
        "lock_sha12": "29c3106e6271",
        "venv": "/opt/raykit/venvs/py3.13.5-ray2.60.0-29c3106e6271",
        "nodes": [
            {"name": n, "node_ip": f"10.0.0.{i + 1}", "role": "head" if n == head else "worker"}
            for i, n in enumerate(nodes)
        ],
        **extra,
    }
    path = sdir / "cluster.json"
    path.write_text(json.dumps(access))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_load_reads_cluster_json_and_token(home: Path) -> None:
    write_access(home / ".config/raykit/clusters/lab", ["node1", "node2", "node3"])
    c = cluster.load("inv", inventory_json=inventory_json(raykit_cluster_name="lab"))
    assert c.name == "lab"
    assert c.dashboard_url == "http://10.0.0.1:8265"
    assert c.prometheus_url == "http://10.0.0.1:9090"
    assert c.node_ips == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert c.token == TOKEN
    assert TOKEN not in repr(c)


def test_load_default_cluster_name_is_raykit(home: Path) -> None:
    write_access(home / ".config/raykit/clusters/raykit", ["node1", "node2", "node3"])
    assert cluster.load("inv", inventory_json=inventory_json()).name == "raykit"


def test_load_literal_secrets_dir(home: Path, tmp_path: Path) -> None:
    write_access(tmp_path / "elsewhere", ["node1", "node2", "node3"])
    inv = inventory_json(raykit_secrets_dir=str(tmp_path / "elsewhere"))
    assert cluster.load("inv", inventory_json=inv).token == TOKEN


def test_load_refuses_templated_secrets_dir(home: Path) -> None:
    inv = inventory_json(raykit_secrets_dir="{{ playbook_dir }}/secrets")
    with pytest.raises(ClusterError, match="raykit_secrets_dir is a template"):
        cluster.load("inv", inventory_json=inv)


@pytest.mark.parametrize("heads", [[], ["node1", "node9"]])
def test_load_needs_exactly_one_head(home: Path, heads: list[str]) -> None:
    with pytest.raises(ClusterError, match="exactly one host in group ray_head"):
        cluster.load("inv", inventory_json=inventory_json(head=heads))


def test_load_not_deployed_says_run_up(home: Path) -> None:
    with pytest.raises(ClusterError, match=r"has not been deployed.*raykit up -i inv"):
        cluster.load("inv", inventory_json=inventory_json())


def test_load_refuses_an_inventory_that_differs_from_the_deployment(home: Path) -> None:
    write_access(home / ".config/raykit/clusters/raykit", ["node1", "node2"])
    with pytest.raises(ClusterError, match=r"differ from the deployed.*raykit up"):
        cluster.load("inv", inventory_json=inventory_json())


def test_load_unreadable_token_names_the_file(home: Path) -> None:
    sdir = home / ".config/raykit/clusters/raykit"
    write_access(sdir, ["node1", "node2", "node3"])
    (sdir / "ray_auth_token").unlink()
    with pytest.raises(ClusterError, match=r"cannot read the cluster's token .*ray_auth_token"):
        cluster.load("inv", inventory_json=inventory_json())


def test_load_garbled_access_file(home: Path) -> None:
    sdir = home / ".config/raykit/clusters/raykit"
    write_access(sdir, ["node1"])
    (sdir / "cluster.json").write_text("{not json")
    with pytest.raises(ClusterError, match=r"cannot read .*cluster.json"):
        cluster.load("inv", inventory_json=inventory_json())


def test_load_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does not exist"):
        cluster.load(str(tmp_path / "nope.yml"))


def test_load_unparsable_inventory_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yml"
    bad.write_text("all: [this is: not an inventory\n")
    with pytest.raises(ClusterError, match=r"cannot read the inventory .*inv.yml"):
        cluster.load(str(bad))


def test_ssh_command_uses_the_inventory_connection() -> None:
    hv = {
        "h": {
            "ansible_host": "192.0.2.5",
            "ansible_user": "admin",
            "ansible_port": 2222,
            "ansible_ssh_private_key_file": "~/k",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        }
    }
    cmd = cluster.ssh_command(hv, "h", 40000, "10.0.0.1:8265")
    assert cmd[0] == "ssh" and cmd[-1] == "admin@192.0.2.5"
    assert cmd[cmd.index("-L") + 1] == "127.0.0.1:40000:10.0.0.1:8265"
    assert cmd[cmd.index("-p") + 1] == "2222"
    assert cmd[cmd.index("-i") + 1] == str(Path("~/k").expanduser())
    assert "StrictHostKeyChecking=no" in cmd
    assert "BatchMode=yes" in cmd and "ExitOnForwardFailure=yes" in cmd


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert cluster.reachable(f"http://127.0.0.1:{s.getsockname()[1]}")
    assert not cluster.reachable(f"http://127.0.0.1:{closed_port()}", timeout=0.5)


def test_tunnel_failure_names_host_and_target(tmp_path: Path) -> None:
    # ssh to a closed local port fails fast: the error says through which host, to what.
    hv = {"h": {"ansible_host": "127.0.0.1", "ansible_port": closed_port()}}
    with pytest.raises(ClusterError, match=r"SSH tunnel to http://10.0.0.1:8265 through h"):
        cluster.open_tunnel(hv, "h", "http://10.0.0.1:8265", timeout=10)


def test_protocol_lines() -> None:
    log = "\n".join(
        [
            "hello",
            'RAYKIT_MANIFEST {"python": "3.13.5"}',
            'RAYKIT_PROGRESS {"done": 1, "total": 4}',
            "RAYKIT_PROGRESS {garbled",
            'RAYKIT_PROGRESS {"done": 4, "total": 4}',
            'RAYKIT_OTHER {"x": 1}',
            'RAYKIT_RESULT {"wall_s": 1.5}',
        ]
    )
    p = jobs.parse_protocol(log)
    assert p == {
        "manifest": {"python": "3.13.5"},
        "progress": {"done": 4, "total": 4},
        "result": {"wall_s": 1.5},
    }
    assert jobs.parse_protocol("no protocol here") == {
        "manifest": None,
        "progress": None,
        "result": None,
    }


def test_auto_does_not_tunnel_to_a_closed_port_on_a_host_that_answers() -> None:
    # Refused: the host is there, the service is down; a tunnel would only hide that.
    url = f"http://127.0.0.1:{closed_port()}"
    notes: list[str] = []
    c = cluster.Cluster("inv", "lab", {}, {}, token=TOKEN)
    with cluster.endpoint(c, url, "h", "auto", notes) as used:
        assert used == url
    assert notes == []


@pytest.mark.parametrize(
    ("access", "mode", "tunnelled"),
    [
        ({}, "auto", True),  # deployed without trusted addresses (or before the field)
        ({"jobs_api_direct": False}, "auto", True),
        ({"jobs_api_direct": True}, "auto", False),  # the user declared the network trusted
        ({"jobs_api_direct": False}, "never", False),  # the user asked for direct
        ({"jobs_api_direct": True}, "always", True),
    ],
)
def test_the_token_goes_through_the_tunnel_unless_the_network_is_trusted(
    monkeypatch: pytest.MonkeyPatch, access: dict[str, Any], mode: str, tunnelled: bool
) -> None:
    opened: list[str] = []

    class FakeTunnel:
        url = "http://127.0.0.1:1"

        def close(self) -> None:
            pass

    def open_tunnel(hostvars: Any, via: str, url: str) -> FakeTunnel:
        opened.append(url)
        return FakeTunnel()

    monkeypatch.setattr(cluster, "open_tunnel", open_tunnel)
    monkeypatch.setattr(cluster, "_probe", lambda url, timeout: "open")
    c = cluster.Cluster("inv", "lab", access, {}, token=TOKEN)
    url = "http://192.0.2.1:8265"
    notes: list[str] = []
    with cluster.endpoint(c, url, "head", mode, notes, secret=True) as used:
        assert used == (FakeTunnel.url if tunnelled else url)
    assert opened == ([url] if tunnelled else [])
    # Prometheus' API carries no secret: direct whenever it answers.
    with cluster.endpoint(c, "http://192.0.2.1:9090", "head", "auto", notes) as used:
        assert used == "http://192.0.2.1:9090"


def test_probe_tells_refused_from_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cluster._probe(f"http://127.0.0.1:{closed_port()}", 0.5) == "refused"

    # No route or a timeout (what a firewalled or NATed network gives; this machine's own
    # network rejects at once, so the failures are simulated): a tunnel is the thing to try.
    def fail(exc: OSError) -> Any:
        def connect(*args: Any, **kwargs: Any) -> Any:
            raise exc

        return connect

    for exc in (TimeoutError("timed out"), OSError(113, "No route to host")):
        monkeypatch.setattr(socket, "create_connection", fail(exc))
        assert cluster._probe("http://192.0.2.1:8265", 0.3) == "unreachable"
