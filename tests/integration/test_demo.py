"""`make demo` (scripts/demo.sh) end to end on its own 3-host sandbox, with the smoke workload
alone: it stops loudly when a host cannot join, and a retry then runs to the end, stating only
what it measured (nodes alive, reports as they record themselves, the 1- vs 3-node columns)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from raykit import sandbox
from support import REPO

pytestmark = pytest.mark.integration

NAME = "raykit-test-demo"
NODE3 = f"{NAME}-node3"

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


def secrets() -> Path:
    return Path.home() / ".config" / "raykit" / "clusters" / NAME


@pytest.fixture(scope="module")
def hosts() -> Iterator[None]:
    sandbox.down(name=NAME)
    shutil.rmtree(secrets(), ignore_errors=True)
    try:
        sandbox.up(name=NAME, hosts=3)
        yield
    finally:
        sandbox.down(name=NAME)
        shutil.rmtree(secrets(), ignore_errors=True)


def demo(reports: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        cwd=REPO,
        env={
            **os.environ,
            "RAYKIT_DEMO_SANDBOX": NAME,
            "RAYKIT_DEMO_REPORTS": str(reports),
            "RAYKIT_DEMO_SUITE": "simple_tasks",
            "RAYKIT_DEMO_UP_ARGS": "-e ray_node_start_timeout=40",
            "ANSIBLE_NOCOLOR": "1",
        },
    )


def head_route(action: str) -> None:
    """Blackhole (or restore) node3's route to the head: SSH from the control node still
    works, Ray on node3 cannot reach the head's GCS."""
    head = sandbox.host_ip(sandbox.subnet_for(NAME), 1)
    subprocess.run(
        ["podman", "exec", "--privileged", NODE3, "ip", "route", action, "blackhole", f"{head}/32"],
        check=True,
        capture_output=True,
    )


def test_a_host_that_cannot_join_stops_the_demo(hosts: None, tmp_path: Path) -> None:
    head_route("add")
    try:
        proc = demo(tmp_path)
    finally:
        head_route("del")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "== 4/6 scale out" in out  # the 1-node part ran and passed its check
    assert "1 node(s) alive in Ray, exactly the inventory's" in out
    assert NODE3 in out[out.index("== 4/6") :]  # the failure names the host
    assert "== 5/6" not in out and "Now:" not in out  # no claim after the failure
    state = sandbox.read_state(NAME)
    assert state is not None and state["requested_hosts"] == 3  # never shrunk


def test_a_retry_runs_to_the_end_and_states_what_it_measured(hosts: None, tmp_path: Path) -> None:
    proc = demo(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    now = re.search(r"^Now: (.*)$", proc.stdout, re.M)
    assert now, proc.stdout[-3000:]
    assert now.group(1).startswith("3 node(s) alive in Ray, exactly the inventory's")
    for i in (1, 2, 3):
        assert f"{NAME}-node{i}" in now.group(1)
    # The reports as they record themselves: the smoke workload on 1 node, then on 3.
    listing = [
        line for line in proc.stdout.splitlines() if "simple_tasks" in line and "succeeded" in line
    ]
    assert len(listing) == 2, proc.stdout[-3000:]
    assert listing[0].split()[:3] == ["1node", "simple_tasks", "1"]
    assert listing[1].split()[:3] == ["3nodes", "simple_tasks", "3"]
    (run_dir,) = tmp_path.glob("demo-*")
    compared = (run_dir / "compare-1node-vs-3nodes.md").read_text()
    assert "simple_tasks · 1 node" in compared and "simple_tasks · 3 nodes" in compared
    # Where the time went, measured in this run.
    assert "Where the time went" in proc.stdout and re.search(r"^total\s+\d+", proc.stdout, re.M)
    assert (run_dir / "up-1node.json").is_file() and (run_dir / "up-3nodes.json").is_file()
