"""Prometheus on a real sandbox cluster: 2 hosts, then scaled out to 3.

The tarball install path runs with a *local* archive: the official Prometheus release cannot
be downloaded on this machine, so the archive is Debian's `prometheus` 2.42.0 binaries repacked
in the official layout (scripts/bench_monitoring.py: repack_debian_prometheus), served from a
file:// URL and pinned by its own sha256 through extra vars. What runs is therefore the real
Prometheus 2.42 binary scraping the real Ray cluster. The last test switches to the distro
package (prometheus_source=distro) on the same cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from raykit import sandbox
from support import ansible_playbook, load_by_path

pytestmark = pytest.mark.integration

NAME = "raykit-test-mon"
REPO = Path(__file__).resolve().parents[2]
HEAD = f"{NAME}-node1"
UNIT = "raykit-prometheus"
DEADLINE = 60.0  # seconds after the converge's end by which every node must be scraped

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)

bench = load_by_path(REPO / "scripts" / "bench_monitoring.py", "bench_monitoring")


# ---------------------------------------------------------------------------- helpers


def converge(inventory: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """site.yml with the venv's ansible-playbook; the result and the monotonic time it ended."""
    proc = ansible_playbook(inventory, "site.yml", *extra)
    return proc, time.monotonic()


def changed(out: str) -> dict[str, int]:
    recap = out.split("PLAY RECAP")[-1]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+:.*?changed=(\d+)", recap, re.M)}


def on_host(node: str, command: str) -> str:
    return subprocess.run(
        ["podman", "exec", node, "sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout.strip()


def hosts_of(inventory: Path) -> dict[str, str]:
    """Inventory name -> cluster address, head first."""
    data = yaml.safe_load(inventory.read_text())["all"]
    return {h: v["raykit_node_ip"] for h, v in data["hosts"].items()}


def prometheus_api(address: str, path: str, **params: str) -> Any:
    url = f"http://{address}:9090{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def scrape_state(address: str) -> tuple[dict[str, str], set[str]]:
    """up of every node's metrics target (by host label), and the hosts with CPU metrics."""
    up = {
        r["metric"]["host"]: r["value"][1]
        for r in prometheus_api(address, "/api/v1/query", query='up{job="ray",exporter="node"}')[
            "result"
        ]
    }
    cpu = {
        r["metric"].get("host", "")
        for r in prometheus_api(address, "/api/v1/query", query="ray_node_cpu_utilization")[
            "result"
        ]
    }
    return up, cpu


def wait_until_scraped(address: str, hosts: list[str], ended: float) -> tuple[float, Any]:
    """Poll until every host's target is up and has ray_node_cpu_utilization, at most until
    DEADLINE seconds after `ended`; return the seconds it took after `ended` and the state."""
    state: Any = None
    while True:
        try:
            up, cpu = state = scrape_state(address)
            if all(up.get(h) == "1" for h in hosts) and set(hosts) <= cpu:
                return time.monotonic() - ended, state
        except OSError as exc:
            state = repr(exc)
        if time.monotonic() - ended > DEADLINE:
            journal = on_host(HEAD, f"journalctl -u {UNIT} --no-pager | tail -30")
            pytest.fail(
                f"not every node scraped {DEADLINE:.0f} s after the converge: {state}\n{journal}"
            )
        time.sleep(1)


def executable(pid: str) -> str:
    """The program a process runs (argv[0]; /proc/PID/exe is not readable in the sandbox)."""
    return on_host(HEAD, f"tr '\\0' '\\n' < /proc/{pid}/cmdline | head -1")


def main_pid() -> tuple[str, str]:
    out = on_host(HEAD, f"systemctl show -p MainPID -p ExecMainStartTimestamp --value {UNIT}")
    pid, started = out.splitlines()
    return pid, started


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def extra_vars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Extra vars for the tarball path with the repacked Debian binaries (file:// mirror)."""
    work = tmp_path_factory.mktemp("prometheus")
    repack = bench.repack_debian_prometheus(work / "repack")
    path = work / "tarball.json"
    path.write_text(json.dumps(bench.tarball_extra_vars(repack)))
    yield path
    cache = Path(os.environ.get("RAYKIT_CACHE_DIR", Path.home() / ".cache" / "raykit"))
    (cache / "prometheus" / Path(repack["archive"]).name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def cluster(extra_vars: Path) -> Iterator[dict[str, Any]]:
    """A fresh 2-host sandbox converged with site.yml (tarball path)."""
    sandbox.down(name=NAME)
    try:
        inventory = sandbox.up(name=NAME, hosts=2)
        proc, ended = converge(inventory, "-e", f"@{extra_vars}")
        assert proc.returncode == 0, proc.stdout[-5000:]
        yield {"inventory": inventory, "ended": ended, "out": proc.stdout}
    finally:
        sandbox.down(name=NAME)


# ---------------------------------------------------------------------------- tests


def test_every_node_is_scraped_within_60_s_of_the_converge(cluster: dict[str, Any]) -> None:
    hosts = hosts_of(cluster["inventory"])
    address = hosts[HEAD]
    seconds, _ = wait_until_scraped(address, list(hosts), cluster["ended"])
    print(f"every node scraped {seconds:.1f} s after the converge ended")
    assert on_host(HEAD, f"systemctl is-active {UNIT}") == "active"
    assert on_host(HEAD, f"systemctl is-enabled {UNIT}") == "enabled"
    # The targets are the inventory's: every node, plus the head's autoscaler and dashboard
    # metrics, labelled host/role/exporter, at each node's cluster address.
    targets = prometheus_api(address, "/api/v1/targets", state="active")["activeTargets"]
    ray = sorted(
        (t["labels"]["host"], t["labels"]["role"], t["labels"]["exporter"], t["labels"]["instance"])
        for t in targets
        if t["labels"]["job"] == "ray"
    )
    assert ray == sorted(
        [
            (HEAD, "head", "node", f"{address}:8080"),
            (HEAD, "head", "autoscaler", f"{address}:44217"),
            (HEAD, "head", "dashboard", f"{address}:44227"),
            (f"{NAME}-node2", "worker", "node", f"{hosts[f'{NAME}-node2']}:8080"),
        ]
    )
    # Not from Ray's session-specific discovery file.
    files = {t["discoveredLabels"].get("__meta_filepath") for t in targets}
    assert files == {None, "/etc/prometheus/raykit/targets/ray.json"}  # None: self-scrape


def test_the_unit_the_files_and_the_release(cluster: dict[str, Any]) -> None:
    address = hosts_of(cluster["inventory"])[HEAD]
    # Listens on the cluster address only, as the prometheus user, from the pushed release.
    listening = on_host(HEAD, "ss -Hltn 'sport = :9090' | awk '{print $4}'")
    assert listening == f"{address}:9090"
    pid, _ = main_pid()
    assert on_host(HEAD, f"stat -c %U /proc/{pid}") == "prometheus"
    assert executable(pid) == "/opt/raykit/prometheus/2.42.0+debian-repack/prometheus"
    assert on_host(HEAD, "readlink /opt/raykit/prometheus/current") == "2.42.0+debian-repack"
    assert "README.raykit-repack" in on_host(HEAD, "ls /opt/raykit/prometheus/current/")
    unit = on_host(HEAD, f"systemctl cat {UNIT}")
    for line in (
        "User=prometheus",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "ReadWritePaths=/var/lib/prometheus/raykit",
        "--storage.tsdb.retention.time=15d",
    ):
        assert line in unit
    assert on_host(HEAD, "stat -c '%U:%G %a' /etc/prometheus/raykit/targets/ray.json") == (
        "root:prometheus 640"
    )
    assert on_host(HEAD, "stat -c '%U:%G %a' /var/lib/prometheus/raykit") == (
        "prometheus:prometheus 750"
    )
    # The head's unit environment points Ray's dashboard at it; a worker's does not.
    env = on_host(HEAD, "cat /etc/raykit/ray.env")
    assert f"RAY_PROMETHEUS_HOST=http://{address}:9090" in env.splitlines()
    assert "RAY_PROMETHEUS_NAME=Prometheus" in env.splitlines()
    assert "RAY_PROMETHEUS" not in on_host(f"{NAME}-node2", "cat /etc/raykit/ray.env")


def test_the_ray_dashboard_reports_prometheus_healthy(cluster: dict[str, Any]) -> None:
    address = hosts_of(cluster["inventory"])[HEAD]
    token = on_host(HEAD, "cat /etc/raykit/auth_token")
    request = urllib.request.Request(
        f"http://{address}:8265/api/prometheus_health",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        body = json.load(resp)
    assert body["result"] is True, body
    assert body["msg"] == "prometheus running"


def test_a_second_converge_changes_nothing_and_monitoring_defaults_to_the_head(
    cluster: dict[str, Any], extra_vars: Path, tmp_path: Path
) -> None:
    # The same inventory without the `monitoring` group: Prometheus stays on the head, and
    # nothing changes anywhere.
    inventory = yaml.safe_load(cluster["inventory"].read_text())
    del inventory["all"]["children"]["monitoring"]
    no_group = tmp_path / "inventory.yml"
    no_group.write_text(yaml.safe_dump(inventory))
    proc, _ = converge(no_group, "-e", f"@{extra_vars}")
    assert proc.returncode == 0, proc.stdout[-5000:]
    counts = changed(proc.stdout)
    assert counts and set(counts.values()) == {0}, counts
    address = hosts_of(cluster["inventory"])[HEAD]
    assert re.search(
        rf"ok: \[{HEAD}\] =>\s+msg: 'Prometheus 2\.42\.0\+debian-repack at "
        rf"http://{re.escape(address)}:9090,",
        proc.stdout,
    )


def test_scale_out_adds_the_target_without_a_restart(
    cluster: dict[str, Any], extra_vars: Path
) -> None:
    address = hosts_of(cluster["inventory"])[HEAD]
    pid_before = main_pid()
    config_before = prometheus_api(address, "/api/v1/status/runtimeinfo")["lastConfigTime"]
    inventory = sandbox.up(name=NAME, hosts=3)
    hosts = hosts_of(inventory)
    assert len(hosts) == 3
    proc, ended = converge(inventory, "-e", f"@{extra_vars}")
    assert proc.returncode == 0, proc.stdout[-5000:]
    seconds, _ = wait_until_scraped(address, list(hosts), ended)
    print(f"the new node scraped {seconds:.1f} s after the scale-out converge ended")
    # The same process, not even reloaded: Prometheus picked the new targets file up itself.
    assert main_pid() == pid_before
    assert prometheus_api(address, "/api/v1/status/runtimeinfo")["lastConfigTime"] == config_before
    assert f"{hosts[f'{NAME}-node3']}:8080" in on_host(
        HEAD, "cat /etc/prometheus/raykit/targets/ray.json"
    )


def test_the_distro_package(cluster: dict[str, Any]) -> None:
    """prometheus_source=distro: Debian's package, its own unit masked, raykit's unit runs it."""
    inventory = cluster["inventory"]
    hosts = hosts_of(inventory)
    address = hosts[HEAD]
    proc, ended = converge(inventory, "-e", "prometheus_source=distro")
    assert proc.returncode == 0, proc.stdout[-5000:]
    pid, _ = main_pid()
    assert executable(pid) == "/usr/bin/prometheus"
    assert on_host(HEAD, "systemctl is-enabled prometheus.service || true") == "masked"
    assert on_host(HEAD, "systemctl is-active prometheus.service || true") == "inactive"
    wait_until_scraped(address, list(hosts), ended)
    # Debian's build serves its web UI from the package's assets.
    with urllib.request.urlopen(f"http://{address}:9090/graph", timeout=5) as resp:
        assert resp.status == 200
    again, _ = converge(inventory, "-e", "prometheus_source=distro")
    assert again.returncode == 0, again.stdout[-5000:]
    counts = changed(again.stdout)
    assert counts and set(counts.values()) == {0}, counts


def test_teardown_stops_prometheus_and_purge_removes_it(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    """The role's teardown entry point (for `raykit down`); Ray itself is left running."""
    book = tmp_path / "down.yml"
    book.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Teardown | Prometheus",
                    "hosts": "ray_head",
                    "gather_facts": False,
                    "become": True,
                    "vars": {"raykit_purge": True},
                    "tasks": [
                        {
                            "name": "Stop Prometheus",
                            "ansible.builtin.include_role": {
                                "name": "prometheus",
                                "tasks_from": "teardown.yml",
                            },
                        }
                    ],
                }
            ]
        )
    )
    proc = ansible_playbook(cluster["inventory"], book, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert on_host(HEAD, f"systemctl is-active {UNIT} || true") == "inactive"
    assert (
        on_host(
            HEAD,
            f"ls -d /etc/systemd/system/{UNIT}.service /etc/prometheus/raykit "
            "/var/lib/prometheus/raykit /opt/raykit/prometheus 2>/dev/null || true",
        )
        == ""
    )
    assert on_host(HEAD, "systemctl is-active raykit-ray") == "active"
    # The distro package (installed by the previous test) keeps its user.
    assert on_host(HEAD, "id -un prometheus") == "prometheus"
