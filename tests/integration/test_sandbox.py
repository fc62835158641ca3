"""`raykit sandbox` end to end: real podman containers with systemd and sshd, reached over SSH.

Uses its own sandbox name, so it never touches another sandbox on this machine, and always
removes it (before starting, in case a killed run left it behind, and at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from raykit import sandbox

pytestmark = pytest.mark.integration

NAME = "raykit-test-sbx"
DISTROS = ["bookworm", "trixie"]

if os.geteuid() != 0 and not shutil.which("podman"):
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def container_ids() -> dict[str, str]:
    out = podman("ps", "-a", "--filter", f"label=raykit.sandbox={NAME}", "--format", "json")
    return {c["Names"][0]: c["Id"] for c in json.loads(out.stdout or "[]")}


def inventory_hosts(path: Path) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["all"]["hosts"]
    return hosts


def ssh(ip: str, command: str) -> str:
    proc = subprocess.run(
        [*sandbox._ssh_args(sandbox.key_path(NAME), ip, timeout=5), command],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"ssh admin@{ip} {command!r}: {proc.stderr}"
    return proc.stdout


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="raykit")
    sandbox.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sandbox", *argv])
    result: int = args.func(args)
    return result


@pytest.fixture(scope="module")
def inventory() -> Iterator[Path]:
    sandbox.down(name=NAME)
    try:
        yield sandbox.up(name=NAME, hosts=2, distros=DISTROS)
    finally:
        sandbox.down(name=NAME)


def test_inventory_lists_the_hosts(inventory: Path) -> None:
    assert inventory == sandbox.inventory_path(NAME)
    data = yaml.safe_load(inventory.read_text())["all"]
    assert list(data["children"]["ray_head"]["hosts"]) == [f"{NAME}-node1"]
    assert list(data["children"]["ray_worker"]["hosts"]) == [f"{NAME}-node2"]
    assert data["vars"]["raykit_cluster_name"] == NAME
    state = json.loads((inventory.parent / "state.json").read_text())
    assert [h["distro"] for h in state["hosts"]] == DISTROS
    assert state["network"]["subnet"] == str(sandbox.subnet_for(NAME))
    assert oct(sandbox.key_path(NAME).stat().st_mode & 0o777) == "0o600"


def test_hosts_are_real_systemd_hosts_reachable_as_a_sudoer(inventory: Path) -> None:
    for (name, hostvars), distro in zip(inventory_hosts(inventory).items(), DISTROS, strict=True):
        ip = hostvars["ansible_host"]
        assert hostvars["raykit_node_ip"] == ip
        out = ssh(
            ip,
            "id -un; sudo -n id -u; hostname; hostname -I; ps -o comm= -p 1; "
            "systemctl is-system-running --wait || true; . /etc/os-release; "
            "echo $VERSION_CODENAME",
        )
        user, root_uid, hostname, addresses, pid1, system_state, codename = out.split("\n")[:7]
        assert user == "admin"
        assert root_uid == "0"
        assert hostname == name
        assert ip in addresses.split()
        assert pid1 == "systemd"
        assert system_state in {"running", "degraded"}
        assert codename == distro


def test_ansible_ping(inventory: Path) -> None:
    ansible = Path(sys.executable).parent / "ansible"
    proc = subprocess.run(
        [str(ansible), "-i", str(inventory), "all", "-m", "ansible.builtin.ping"],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in inventory_hosts(inventory):
        assert f"{host} | SUCCESS" in proc.stdout, proc.stdout


def test_status_reports_every_host(inventory: Path) -> None:
    hosts = sandbox.status(NAME)
    assert [(h.container, h.distro, h.state, h.ssh) for h in hosts] == [
        (f"{NAME}-node1", "bookworm", "running", True),
        (f"{NAME}-node2", "trixie", "running", True),
    ]


def test_up_again_adds_a_host_and_keeps_the_others(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = container_ids()
    assert sorted(before) == [f"{NAME}-node1", f"{NAME}-node2"]
    assert cli("up", "--name", NAME, "--hosts", "3") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(inventory)
    after = container_ids()
    assert sorted(after) == [f"{NAME}-node1", f"{NAME}-node2", f"{NAME}-node3"]
    assert {k: after[k] for k in before} == before  # same containers, not recreated
    hosts = inventory_hosts(inventory)
    assert list(hosts) == sorted(after)
    node3 = hosts[f"{NAME}-node3"]["ansible_host"]
    assert node3 == sandbox.host_ip(sandbox.subnet_for(NAME), 3)
    assert ssh(node3, "hostname").strip() == f"{NAME}-node3"


def test_up_again_keeps_the_size_and_state_records_it(inventory: Path) -> None:
    before = container_ids()
    assert cli("up", "--name", NAME) == 0  # no --hosts: the size the last up asked for (3)
    assert container_ids() == before
    state = sandbox.read_state(NAME)
    assert state is not None and state["complete"] and state["requested_hosts"] == 3
    assert all(h["ready"] for h in state["hosts"])


RETRY = "raykit-test-retry"


def test_a_failed_up_never_shrinks_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second container is created but never started (as when its start fails); the next
    plain `up` completes the sandbox to the 3 hosts first asked for, every one ready."""
    sandbox.down(name=RETRY)
    real_run_container, real_podman = sandbox._run_container, sandbox._podman

    def create_only(*args: str, **kw: Any) -> str:
        if args[:1] == ("run",):
            args = ("create", *(a for a in args[1:] if a != "--detach"))
        return real_podman(*args, **kw)

    def second_fails(name: str, host: sandbox.HostSpec) -> None:
        if host.index != 2:
            real_run_container(name, host)
            return
        monkeypatch.setattr("raykit.sandbox.containers._podman", create_only)
        try:
            real_run_container(name, host)
        finally:
            monkeypatch.setattr("raykit.sandbox.containers._podman", real_podman)
        raise sandbox.SandboxError(f"injected: {host.name} was created but failed to start")

    try:
        monkeypatch.setattr("raykit.sandbox.lifecycle._run_container", second_fails)
        with pytest.raises(sandbox.SandboxError, match="injected"):
            sandbox.up(name=RETRY, hosts=3)
        monkeypatch.setattr("raykit.sandbox.lifecycle._run_container", real_run_container)

        states = {
            c["Names"][0]: c["State"]
            for c in json.loads(
                podman(
                    "ps", "-a", "--filter", f"label=raykit.sandbox={RETRY}", "--format", "json"
                ).stdout
            )
        }
        assert states == {f"{RETRY}-node1": "running", f"{RETRY}-node2": "created"}
        state = sandbox.read_state(RETRY)
        assert state is not None and state["requested_hosts"] == 3 and not state["complete"]

        assert cli("up", "--name", RETRY) == 0  # as a user retries: no --hosts
        state = sandbox.read_state(RETRY)
        assert state is not None and state["complete"]
        assert [h["name"] for h in state["hosts"]] == [f"{RETRY}-node{i}" for i in (1, 2, 3)]
        hosts = inventory_hosts(sandbox.inventory_path(RETRY))
        assert list(hosts) == [f"{RETRY}-node{i}" for i in (1, 2, 3)]
        for host, hv in hosts.items():
            proc = subprocess.run(
                [*sandbox._ssh_args(sandbox.key_path(RETRY), hv["ansible_host"], 5), "hostname"],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            assert proc.returncode == 0 and proc.stdout.strip() == host, proc.stderr
        assert all(h.state == "running" and h.ssh for h in sandbox.status(RETRY))
    finally:
        sandbox.down(name=RETRY)


def test_down_removes_everything(inventory: Path) -> None:
    sandbox.down(name=NAME)
    assert container_ids() == {}
    assert podman("network", "exists", NAME, check=False).returncode != 0
    assert not inventory.parent.exists()
    sandbox.down(name=NAME)  # idempotent
