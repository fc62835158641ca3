"""The design card's command, literally: `ansible-playbook site.yml -i inventories/lab`, with
the sandbox playing the example lab's three hosts (head, Linux worker, WSL worker)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from raykit import sandbox
from support import REPO, ansible_playbook

pytestmark = pytest.mark.integration

NAME = "raykit-test-lab"
LAB = REPO / "inventories" / "lab"

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def played() -> Iterator[Path]:
    secrets = Path.home() / ".config" / "raykit" / "clusters" / NAME
    sandbox.down(name=NAME)
    shutil.rmtree(secrets, ignore_errors=True)
    try:
        sandbox.up(name=NAME, hosts=3)
        yield sandbox.play_inventory(NAME, LAB)
    finally:
        sandbox.down(name=NAME)
        shutil.rmtree(secrets, ignore_errors=True)


def test_site_yml_deploys_the_example_lab(played: Path) -> None:
    proc = ansible_playbook(LAB, "site.yml", "-i", str(played), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    alive = re.search(r"3 nodes alive: ([\d., ]+)", proc.stdout)
    assert alive, proc.stdout[-3000:]
    ips = {sandbox.host_ip(sandbox.subnet_for(NAME), i) for i in (1, 2, 3)}
    assert set(alive.group(1).strip().rstrip(".").split(", ")) == ips
    # The lab's own names are the inventory hosts Ansible worked on.
    recap = proc.stdout[proc.stdout.index("PLAY RECAP") :]
    for host in ("ray-head", "ray-w1", "wsl-w2"):
        assert re.search(
            rf"^{host}\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", recap, re.M
        )
