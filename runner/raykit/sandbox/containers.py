"""The sandbox's podman network and containers (found by label, created, checked against the
plan), its SSH key authorized inside them, and the waits for systemd and SSH."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.markup import escape

from ._common import LABEL, SSH_USER, SandboxError, console
from ._exec import _podman, _run
from .images import image_name, recipe_hash
from .state import HostSpec, _cpus_label, _parse_cpus_label, container_name, key_path

SSH_TIMEOUT = 90.0  # seconds for all hosts to accept SSH after `up` started them


def _sandbox_containers(name: str) -> dict[str, dict[str, Any]]:
    """The containers carrying label raykit.sandbox=NAME, by container name."""
    out = _podman("ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "json")
    result = {}
    for item in json.loads(out or "[]"):
        labels = item.get("Labels") or {}
        if labels.get(LABEL) != name:  # belt and braces over podman's filter
            continue
        result[item["Names"][0]] = item
    return result


def _existing_by_index(containers: dict[str, dict[str, Any]], name: str) -> dict[int, Any]:
    by_index: dict[int, Any] = {}
    for cname, item in containers.items():
        match = re.fullmatch(re.escape(name) + r"-node(\d+)", cname)
        if match:
            by_index[int(match.group(1))] = item
    return by_index


def _check_name_conflicts(name: str, hosts: int) -> None:
    """Refuse to touch containers that have our names but not our label."""
    wanted = {container_name(name, i) for i in range(1, hosts + 1)}
    out = _podman("ps", "-a", "--format", "json")
    for item in json.loads(out or "[]"):
        for cname in item.get("Names") or []:
            if cname in wanted and (item.get("Labels") or {}).get(LABEL) != name:
                raise SandboxError(
                    f"a container named {cname!r} exists but does not belong to sandbox {name!r} "
                    "(no label raykit.sandbox); raykit will not touch it: choose another --name"
                )


def _network_info(network: str) -> dict[str, Any] | None:
    proc = _run(["podman", "network", "inspect", network], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    return data[0] if data else None


def _network_subnets(info: dict[str, Any]) -> list[str]:
    return [str(s.get("subnet")) for s in info.get("subnets") or []]


def _ensure_network(name: str, subnet: ipaddress.IPv4Network) -> None:
    info = _network_info(name)
    if info is not None:
        if (info.get("labels") or {}).get(LABEL) != name:
            raise SandboxError(
                f"a podman network named {name!r} exists but was not made by raykit sandbox "
                "(no label raykit.sandbox); choose another --name"
            )
        if str(subnet) not in _network_subnets(info):
            raise SandboxError(
                f"network {name!r} has subnet {_network_subnets(info)}, expected {subnet}; "
                f"recreate the sandbox: raykit sandbox up --fresh --name {name}"
            )
        return
    for other in json.loads(_podman("network", "ls", "--format", "json") or "[]"):
        for used in _network_subnets(other):
            with contextlib.suppress(ValueError):
                if ipaddress.ip_network(used, strict=False).overlaps(subnet):
                    raise SandboxError(
                        f"subnet {subnet} of sandbox {name!r} is already used by podman network "
                        f"{other.get('name')!r}; choose another --name"
                    )
    gateway = subnet.network_address + 1
    _podman(
        *f"network create --driver bridge --subnet {subnet} --gateway {gateway}".split(),
        *("--label", f"{LABEL}={name}", name),
    )
    console.print(f"[bold]sandbox:[/] created network {name} ({subnet})")


def _matches(item: dict[str, Any], host: HostSpec, network: str) -> bool:
    labels = item.get("Labels") or {}
    return (
        labels.get(f"{LABEL}.distro") == host.distro
        and labels.get(f"{LABEL}.ip") == host.ip
        and labels.get(f"{LABEL}.network") == network
        and _parse_cpus_label(labels.get(f"{LABEL}.cpus", "")) == host.cpus
        # Made from the current image recipe (packages, capabilities): else made again.
        and labels.get(f"{LABEL}.recipe") == recipe_hash(host.distro)
    )


def _run_container(name: str, host: HostSpec) -> None:
    labels = {
        LABEL: name,
        f"{LABEL}.node": str(host.index),
        f"{LABEL}.distro": host.distro,
        f"{LABEL}.ip": host.ip,
        f"{LABEL}.network": name,
        f"{LABEL}.cpus": _cpus_label(host.cpus),
        f"{LABEL}.recipe": recipe_hash(host.distro),
    }
    args = [
        *f"run --detach --name {host.name} --hostname {host.name}".split(),
        *f"--network {name} --ip {host.ip}".split(),
        "--systemd=always",
        "--shm-size=1g",
        "--pids-limit=-1",
        # The host's own firewall (nftables, in the container's network namespace only).
        "--cap-add=NET_ADMIN",
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    if host.cpus is not None:
        args.append(f"--cpus={host.cpus:g}")
    args += [image_name(host.distro), "/sbin/init"]
    _podman(*args)


_AUTHORIZE_SCRIPT = """set -e
home=$(getent passwd "$1" | cut -d: -f6)
install -d -m 0700 -o "$1" -g "$1" "$home/.ssh"
key=$(cat)
f="$home/.ssh/authorized_keys"
touch "$f"
grep -qxF "$key" "$f" || printf '%s\\n' "$key" >>"$f"
chown "$1:$1" "$f"
chmod 0600 "$f"
"""


def _authorize_key(container: str, public_key: str) -> None:
    """Add the sandbox key to admin's authorized_keys inside the container (kept across
    restarts, independent of files on this machine)."""
    _podman(
        "exec",
        "-i",
        container,
        "sh",
        "-c",
        _AUTHORIZE_SCRIPT,
        "sh",
        SSH_USER,
        input_text=public_key.strip() + "\n",
    )


def _ensure_key(name: str) -> str:
    key = key_path(name)
    if not (key.is_file() and key.with_suffix(".pub").is_file()):
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        comment = f"raykit-sandbox:{name}"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
    key.chmod(0o600)
    return key.with_suffix(".pub").read_text()


def _ssh_args(key: Path, ip: str, timeout: int = 3) -> list[str]:
    options = {
        "BatchMode": "yes",
        "ConnectTimeout": str(timeout),
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "LogLevel": "ERROR",
        "IdentitiesOnly": "yes",
    }
    args = ["ssh", "-i", str(key)]
    for option, value in options.items():
        args += ["-o", f"{option}={value}"]
    return [*args, f"{SSH_USER}@{ip}"]


def ssh_ok(key: Path, ip: str, timeout: int = 3) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            [*_ssh_args(key, ip, timeout), "true"],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 5,
        )
    except subprocess.TimeoutExpired:
        return False, "ssh timed out"
    return proc.returncode == 0, proc.stderr.strip()


def _container_state(container: str) -> str:
    proc = _run(
        ["podman", "container", "inspect", "--format", "{{.State.Status}}", container], check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else "missing"


def _diagnose(container: str) -> str:
    parts = []
    for title, cmd in (
        ("podman logs", ["podman", "logs", "--tail", "20", container]),
        ("ssh.service", ["podman", "exec", container, "journalctl", "-u", "ssh", "-n", "20"]),
        ("system state", ["podman", "exec", container, "systemctl", "is-system-running"]),
    ):
        proc = _run(cmd, check=False)
        text = (proc.stdout + proc.stderr).strip() or "(no output)"
        parts.append(f"--- {title} ({' '.join(cmd)}) ---\n{text}")
    return "\n".join(parts)


def _wait_booted(host: HostSpec, timeout: float) -> str | None:
    """Wait until systemd in the container finished booting; None when running (or degraded)."""
    cmd = ["podman", "exec", host.name, "systemctl", "is-system-running", "--wait"]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=max(timeout, 1)
        )
    except subprocess.TimeoutExpired:
        return "systemd did not finish booting in time"
    state = proc.stdout.strip()
    if state == "degraded":
        failed = _run(
            ["podman", "exec", host.name, "systemctl", "--failed", "--plain", "--no-legend"],
            check=False,
        ).stdout.strip()
        console.print(
            f"[yellow]sandbox: {host.name} is degraded; failed units:[/]\n{escape(failed)}"
        )
    elif state != "running":
        return f"systemd state {state or proc.stderr.strip()!r}"
    return None


def _wait_for_ssh(hosts: Sequence[HostSpec], key: Path, timeout: float = SSH_TIMEOUT) -> None:
    """Wait until every host accepts SSH as admin with the sandbox key and systemd is up."""
    deadline = time.monotonic() + timeout

    def wait_one(host: HostSpec) -> str | None:
        attempt = 0
        while True:
            ok, last = ssh_ok(key, host.ip)
            if ok:
                return _wait_booted(host, deadline - time.monotonic())
            attempt += 1
            if attempt % 5 == 0 and (state := _container_state(host.name)) != "running":
                return f"container {host.name} is {state}"
            if time.monotonic() > deadline:
                return f"no SSH after {timeout:.0f} s ({last or 'no error text'})"
            time.sleep(0.3)

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        results = list(pool.map(wait_one, hosts))
    failed = [(h, err) for h, err in zip(hosts, results, strict=True) if err]
    if failed:
        lines = [f"{h.name} ({SSH_USER}@{h.ip}): {err}" for h, err in failed]
        host = failed[0][0]
        raise SandboxError(
            "sandbox hosts are not ready:\n  "
            + "\n  ".join(lines)
            + f"\n{_diagnose(host.name)}\n"
            + f"More: podman logs {host.name}; podman exec {host.name} journalctl -b --no-pager"
        )
