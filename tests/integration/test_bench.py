"""`raykit bench`, `raykit run` and `raykit compare` end to end, as a user types them, on a
real 2-host sandbox cluster: real Ray (Jobs API with the cluster's token), real Prometheus
(Debian's package on the head), real SSH (the tunnel)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raykit import sandbox
from support import raykit

pytestmark = pytest.mark.integration

NAME = "raykit-test-bench"
HEAD = f"{NAME}-node1"

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)

SEED_LIKE = """\
import sys, time
import ray

# As the seed's scripts connect: the dashboard_host argument must do no harm in a job.
ray.init(address="auto", dashboard_host="0.0.0.0")

@ray.remote
def square(x):
    time.sleep(0.2)
    return x * x

print("args:", sys.argv[1:])
print("squares:", ray.get([square.remote(i) for i in range(5)]))
"""

FAILING = """\
import ray
ray.init(address="auto")
print("about to fail")
raise RuntimeError("the workload broke on purpose")
"""


@pytest.fixture(scope="module")
def inventory() -> Iterator[str]:
    sandbox.down(name=NAME)
    try:
        inv = str(sandbox.up(name=NAME, hosts=2))
        up = raykit("up", "-i", inv, timeout=1800)
        assert up.returncode == 0, up.stderr[-3000:]
        yield inv
    finally:
        sandbox.down(name=NAME)


@pytest.fixture(scope="module")
def node_ips(inventory: str) -> list[str]:
    return [sandbox.host_ip(sandbox.subnet_for(NAME), i) for i in (1, 2)]


def report_of(proc: subprocess.CompletedProcess[str]) -> tuple[Path, dict[str, Any]]:
    """The report directory a measured command printed last on stdout, and its report.json."""
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    path = Path(lines[-1])
    return path, json.loads((path / "report.json").read_text())


def test_bench_fake_nn_repeated(inventory: str, node_ips: list[str], tmp_path: Path) -> None:
    proc = raykit(
        "bench", "-i", inventory, "--workload", "fake_nn", "--set", "preset=small",
        "--set", "task_num=3000", "--repeat", "2", "--reports", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    path, doc = report_of(proc)
    assert path.parent == tmp_path and path.name.endswith("-fake_nn")
    assert doc["status"] == "succeeded" and doc["error"] is None
    assert doc["params"]["preset"] == "small" and doc["params"]["task_num"] == 3000
    m = doc["manifest"]
    assert [h["node_ip"] for h in m["hosts"]] == node_ips
    assert [h["role"] for h in m["hosts"]] == ["head", "worker"]
    assert all(h["alive"] and h["cpus"] >= 1 for h in m["hosts"])
    assert m["python"].startswith("3.13.5") and m["ray"] == "2.60.0"
    assert m["venv"].endswith(m["lock_sha12"]) and len(m["lock_sha12"]) == 12
    runs = doc["runs"]
    assert len(runs) == 2
    for run in runs:
        assert run["status"] == "SUCCEEDED"
        res = run["result"]
        assert res["tasks"] == 300  # 3000 inputs in batches of 10
        assert sum(res["per_node"].values()) == 300
        assert set(res["per_node"]) == set(node_ips)  # actors spread over both nodes
        # What each node's actors did, from the actors themselves; the CPUs Ray was told.
        assert res["node_cpus"] == {h["node_ip"]: h["cpus"] for h in m["hosts"]}
        work = res["node_work"]
        assert {ip: w["calls"] for ip, w in work.items()} == res["per_node"]
        assert sum(w["workers"] for w in work.values()) == 10
        for w in work.values():
            assert 0 <= w["first_start_s"] < w["last_end_s"] <= res["wall_s"] + 0.5
            assert w["busy_s"] > 0
        assert 0 < run["workload_wall_s"] < run["wall_s"]
        assert (path / run["log"]).read_text().count("RAYKIT_RESULT") == 1
        metrics = run["metrics"]
        for ip in node_ips:
            node = metrics["nodes"][ip]
            assert node["cpu_pct_mean"] is not None and 0 <= node["cpu_pct_mean"] <= 100
            assert 0 < node["mem_used_pct_max"] < 100
            assert node["object_store_used_max_bytes"] is not None
            assert metrics["series"]["cpu_pct"][ip]
    # Same parameters, same answer.
    assert runs[0]["result"]["checksum"] == runs[1]["result"]["checksum"]
    assert doc["summary"]["wall_s"]["n"] == 2
    md = (path / "report.md").read_text()
    assert "fake_nn" in md and node_ips[1] in md
    assert "## Work per node" in md
    for n in (1, 2):  # two nodes that both worked: a verdict, either way, per run
        assert re.search(
            rf"^- run {n}: (balanced: every node finished within [0-9.]+ s of the others|"
            rf"node ({'|'.join(map(re.escape, node_ips))}) was busy [0-9.]+ s after the others)",
            md,
            re.M,
        ), md
    html = (path / "report.html").read_text()
    assert "data:image/png;base64," in html


def test_balanced_gives_the_same_answer(inventory: str, tmp_path: Path) -> None:
    sets = ["--set", "preset=small", "--set", "task_num=1000"]
    a = raykit("bench", "-i", inventory, "--workload", "fake_nn", *sets, "--reports", str(tmp_path))
    b = raykit(
        "bench", "-i", inventory, "--workload", "fake_nn_balanced", *sets,
        "--reports", str(tmp_path),
    )  # fmt: skip
    assert a.returncode == 0 and b.returncode == 0, (a.stderr + b.stderr)[-3000:]
    ra, rb = report_of(a)[1]["runs"][0]["result"], report_of(b)[1]["runs"][0]["result"]
    assert ra["checksum"] == rb["checksum"]
    assert sum(rb["per_node"].values()) == rb["tasks"] == 100

    cmp_md = tmp_path / "cmp.md"
    cmp = raykit("compare", str(report_of(a)[0]), str(report_of(b)[0]), "--markdown", str(cmp_md))
    assert cmp.returncode == 0, cmp.stderr
    text = cmp_md.read_text()
    assert "\N{MULTIPLICATION SIGN}" in text  # ratios against the first report
    assert "| CPUs announced |" in text and "| last node's lag (median) |" in text
    assert "fake_nn_balanced" in cmp.stdout


def test_run_a_seed_like_script_unmodified(inventory: str, tmp_path: Path) -> None:
    script = tmp_path / "seed_like.py"
    script.write_text(SEED_LIKE)
    reports = tmp_path / "reports"
    proc = raykit("run", "-i", inventory, "--reports", str(reports), str(script), "a", "--b", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    path, doc = report_of(proc)
    assert doc["kind"] == "script" and doc["name"] == "seed_like"
    run = doc["runs"][0]
    assert run["status"] == "SUCCEEDED" and run["result"]["exit_code"] == 0
    log = (path / run["log"]).read_text()
    assert "args: ['a', '--b', '3']" in log
    assert "squares: [0, 1, 4, 9, 16]" in log
    assert doc["manifest"]["python"].startswith("3.13.5")


def test_a_failing_script_keeps_its_log_and_exits_1(inventory: str, tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(FAILING)
    proc = raykit("run", "-i", inventory, "--repeat", "3", "--reports", str(tmp_path), str(script))
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    path, doc = report_of(proc)
    assert doc["status"] == "failed"
    assert "FAILED" in doc["error"]
    assert len(doc["runs"]) == 1  # stopped at the first failure
    run = doc["runs"][0]
    assert run["status"] == "FAILED" and run["result"] is None
    log = (path / run["log"]).read_text()
    assert "the workload broke on purpose" in log and "about to fail" in log
    assert "the workload broke on purpose" in run["log_tail"]
    assert run["wall_s"] > 0
    md = (path / "report.md").read_text()
    assert "the workload broke on purpose" in md


def test_prometheus_down_keeps_the_wall_time(inventory: str, tmp_path: Path) -> None:
    def unit(action: str) -> None:
        subprocess.run(
            ["podman", "exec", HEAD, "systemctl", action, "raykit-prometheus"], check=True
        )

    unit("stop")
    try:
        proc = raykit(
            "bench", "-i", inventory, "--workload", "simple_tasks", "--set", "sleep_s=0.2",
            "--reports", str(tmp_path),
        )  # fmt: skip
    finally:
        unit("start")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, doc = report_of(proc)
    run = doc["runs"][0]
    assert run["status"] == "SUCCEEDED" and run["wall_s"] > 0
    assert run["result"]["tasks"] == 5
    missing = run["metrics"]["missing"]
    assert missing, "every metric should be reported missing"
    assert all("9090" in reason for reason in missing.values()), missing
    assert "missing" in proc.stderr


def test_through_an_ssh_tunnel(inventory: str, tmp_path: Path) -> None:
    proc = raykit(
        "bench", "-i", inventory, "--workload", "forward_remote", "--set", "inputs=4",
        "--tunnel", "always", "--reports", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, doc = report_of(proc)
    assert any("SSH tunnel" in n and ":8265" in n for n in doc["notes"]), doc["notes"]
    assert any("SSH tunnel" in n and ":9090" in n for n in doc["notes"]), doc["notes"]
    run = doc["runs"][0]
    assert run["result"]["tasks"] == 4
    assert "nodes.cpu_pct_mean" not in run["metrics"]["missing"], run["metrics"]["missing"]
    assert all(n["cpu_pct_mean"] is not None for n in run["metrics"]["nodes"].values())


def job_count(inventory: str) -> int:
    from raykit import cluster, jobs

    c = cluster.load(inventory)
    return len(jobs.client(c.dashboard_url, c.token).list_jobs())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "fake_nm"], "unknown workload 'fake_nm'"),
        (["--workload", "fake_nn", "--set", "task_nun=5"], "task_num"),
        (["--workload", "fake_nn", "--set", "preset=huge"], "preset"),
    ],
)
def test_bad_input_submits_nothing(
    inventory: str, tmp_path: Path, args: list[str], message: str
) -> None:
    before = job_count(inventory)
    proc = raykit("bench", "-i", inventory, *args, "--reports", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not list(tmp_path.iterdir())
    assert job_count(inventory) == before


# ----------------------------------------------------------------- raykit status (last: it
# stops a worker, then waits until the cluster is whole again)


def status_json(inventory: str) -> tuple[int, dict[str, Any]]:
    proc = raykit("status", "-i", inventory, "--json", timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def test_status_healthy_then_a_stopped_worker_is_reported(inventory: str, tmp_path: Path) -> None:
    import time

    # Earlier tests ran workloads; Prometheus scrapes every 5 s: healthy within a minute.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status_json(inventory)[0] != 0:
        time.sleep(3)
    healthy = raykit("status", "-i", inventory, "--reports", str(tmp_path))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "healthy: 2 of 2 nodes alive, every target up" in healthy.stdout
    code, doc = status_json(inventory)
    assert code == 0 and doc["code"] == 0
    for node in doc["nodes"]:
        # From the node labels each node started with: what it runs.
        assert (node["python"], node["ray"]) == ("3.13.5", "2.60.0") and len(node["lock"]) == 12
        assert node["cpu_pct"] is not None and node["disk_pct"] is not None
        assert node["targets_up"]["node"] == 1
    print(f"raykit status answered in {doc['seconds']} s")

    worker = f"{NAME}-node2"
    subprocess.run(["podman", "exec", worker, "systemctl", "stop", "raykit-ray"], check=True)
    try:
        time.sleep(5)  # one refresh of `raykit status --watch 5`
        code, doc = status_json(inventory)
        assert code == 1, doc
        assert f"{worker} is not alive in Ray" in doc["verdict"]
        text = raykit("status", "-i", inventory)
        assert text.returncode == 1 and "degraded:" in text.stdout
    finally:
        subprocess.run(["podman", "exec", worker, "systemctl", "start", "raykit-ray"], check=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status_json(inventory)[0] != 0:
            time.sleep(3)
    assert status_json(inventory)[0] == 0  # whole again for whatever runs next
