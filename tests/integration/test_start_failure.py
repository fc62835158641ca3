"""When Ray itself refuses to start (here: its GCS port is taken by another program, which no
preflight can know), the converge stops within seconds, not after the start timeout, and
shows Ray's own words from the unit's journal."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from raykit import sandbox
from support import ansible_playbook, fresh_sandbox

pytestmark = pytest.mark.integration

NAME = "raykit-test-start"
HEAD = f"{NAME}-node1"

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def inventory() -> Iterator[Path]:
    with fresh_sandbox(NAME, 1) as path:
        yield path


def test_a_port_in_use_fails_fast_with_rays_reason(inventory: Path) -> None:
    ip = sandbox.host_ip(sandbox.subnet_for(NAME), 1)
    # Another program holds the GCS port on the head's address (a transient unit, so it
    # outlives this command).
    squat = (
        f"import socket, time; s = socket.socket(); s.bind(('{ip}', 6379)); s.listen(); "
        "time.sleep(3600)"
    )
    subprocess.run(
        ["podman", "exec", HEAD, "systemd-run", "--unit=squatter", "python3", "-c", squat],
        check=True,
        capture_output=True,
    )
    started = time.monotonic()
    proc = ansible_playbook(inventory, "site.yml", "-e", "ray_node_start_timeout=300")
    seconds = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    failed = out[out.index("TASK [ray_node : The node came up]") :]
    assert f"{HEAD}: Ray exited" in failed and "systemd restarted raykit-ray" in failed
    assert "Ray's own words (journalctl -u raykit-ray)" in failed
    assert re.search(r"6379|address already in use|port", failed, re.I), failed[:3000]
    # Stopped at the first exit, far from the 300 s start timeout (the whole converge,
    # runtime included, took this long).
    print(f"converge until the failure: {seconds:.0f} s")
    assert "Timeout when waiting" not in out
