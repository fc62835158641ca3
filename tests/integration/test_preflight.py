"""Bad input stops in preflight, names the host, the problem and the fix, and changes nothing.

Real hosts (a 2-host sandbox: Debian 12 + Debian 13), real SSH, the real playbooks. Every case
ends by checking that no host got anything: no /opt/raykit, no unit, no Ray process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from raykit import sandbox
from support import ansible_playbook

pytestmark = pytest.mark.integration

NAME = "raykit-test-gate"
REPO = Path(__file__).resolve().parents[2]

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def inventory() -> Iterator[dict[str, Any]]:
    sandbox.down(name=NAME)
    try:
        path = sandbox.up(name=NAME, hosts=2, distros=["bookworm", "trixie"])
        yield yaml.safe_load(path.read_text())
    finally:
        sandbox.down(name=NAME)


def write(inv: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


def converge(inv_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(inv_path, "site.yml", *extra, timeout=600)


def assert_untouched(inv: dict[str, Any]) -> None:
    """Nothing of raykit's on any host: no prefix, no unit, no Ray process."""
    for host in inv["all"]["hosts"]:
        out = subprocess.run(
            [
                "podman",
                "exec",
                host,
                "sh",
                "-c",
                "ls -d /opt/raykit /etc/raykit /etc/systemd/system/raykit-ray.service 2>/dev/null;"
                " pgrep -l raylet; pgrep -l gcs_server; true",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "", f"{host} was changed: {out.stdout!r}"


def test_different_interpreters_stop_at_the_gate(inventory: dict[str, Any], tmp_path: Path) -> None:
    # Debian 12's python3 is 3.11.2, Debian 13's is 3.13.5: Ray would refuse the join later.
    proc = converge(write(inventory, tmp_path), "-e", "raykit_python_source=system")
    out = proc.stdout
    assert proc.returncode != 0
    assert "Version gate: the hosts would not run the same python" in out
    assert "Nothing has been started" in out
    rows = re.findall(rf"^\s*({NAME}-node\d)\s+(\d+\.\d+\.\d+)( !)?\s*$", out, re.M)
    assert set(rows) == {(f"{NAME}-node1", "3.11.2", ""), (f"{NAME}-node2", "3.13.5", " !")}
    assert "raykit_python_source=source" in out  # the fix
    assert "ray start" not in out.lower().replace("`ray start`", "")
    assert_untouched(inventory)


def test_a_typo_in_a_variable_is_named_with_a_suggestion(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node2"]["ray_node_num_cpu"] = 1
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert (
        f"{NAME}-node2: unknown variable(s) ray_node_num_cpu (did you mean ray_node_num_cpus?)"
    ) in proc.stdout
    assert_untouched(inventory)


def test_two_heads_are_refused(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    children = inv["all"]["children"]
    children["ray_head"]["hosts"] = {f"{NAME}-node1": None, f"{NAME}-node2": None}
    children["ray_worker"]["hosts"] = {}
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert "must put exactly one host in the group ray_head; it has 2" in proc.stdout
    assert_untouched(inventory)


def test_a_wrong_node_ip_is_named(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    hosts = inv["all"]["hosts"]
    hosts[f"{NAME}-node2"]["raykit_node_ip"] = hosts[f"{NAME}-node1"]["raykit_node_ip"]
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert (
        f"{NAME}-node2: raykit_node_ip {hosts[f'{NAME}-node1']['raykit_node_ip']} "
        "is not one of its addresses"
    ) in proc.stdout
    assert_untouched(inventory)


def test_standalone_without_an_archive_names_what_to_set(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    proc = converge(write(inventory, tmp_path), "-e", "raykit_python_source=standalone")
    assert proc.returncode != 0
    assert "raykit_python_standalone has no url and sha256 for x86_64" in proc.stdout
    assert_untouched(inventory)


def test_an_unreachable_host_stops_everything(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node2"]["ansible_host"] = "127.0.0.1"
    inv["all"]["hosts"][f"{NAME}-node2"]["ansible_port"] = 1  # nothing listens there
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert f"{NAME}-node2" in proc.stdout and "UNREACHABLE" in proc.stdout
    assert_untouched(inventory)


@pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")
def test_the_cli_exits_non_zero_and_names_the_failing_host(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    raykit = str(Path(os.sys.executable).parent / "raykit")
    proc = subprocess.run(
        [raykit, "up", "-i", str(write(inventory, tmp_path)), "-e", "raykit_python_source=system"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 1
    assert f"{NAME}-node1 failed at" in proc.stderr
    assert "Version gate" in proc.stderr
    assert_untouched(inventory)
