"""`up`, `down` and `status`: a sandbox brought to the size asked for (control node, images,
network, containers, SSH, inventory, state, in that order), removed, or reported."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import DEFAULT_NAME, LABEL, _locked, _write_atomic, console
from ._exec import _have, _podman, _require_root
from .containers import (
    _authorize_key,
    _check_name_conflicts,
    _ensure_key,
    _ensure_network,
    _existing_by_index,
    _matches,
    _network_info,
    _run_container,
    _sandbox_containers,
    _wait_for_ssh,
    ssh_ok,
)
from .host import ensure_podman, verify_podman
from .images import _prune_old_images, ensure_images, image_name
from .state import (
    _finished_ids,
    _write_state,
    inventory_path,
    key_path,
    plan_hosts,
    render_inventory,
    state_dir,
    subnet_for,
)
from .validate import resolve_cpus, resolve_distros, validate_name


def up(
    *,
    name: str = DEFAULT_NAME,
    hosts: int = 3,
    distros: list[str] | None = None,
    cpus: list[float] | None = None,
    fresh: bool = False,
) -> Path:
    """Bring the sandbox NAME to ``hosts`` running hosts reachable over SSH; return its inventory.

    Idempotent: running containers that match the request are kept, missing ones created (so a
    larger ``hosts`` adds nodes), ones that no longer match (distro, CPUs) are recreated and
    nodes beyond ``hosts`` removed. Without ``distros``/``cpus`` existing hosts keep theirs.
    ``fresh`` removes the whole sandbox first.
    """
    validate_name(name)
    want_distros = resolve_distros(distros, hosts)
    want_cpus = resolve_cpus(cpus, hosts)
    plan_hosts(name, hosts)  # validates the host count before anything happens
    podman_changed = ensure_podman()
    _require_root("up")
    with _locked(f"sandbox-{name}"):
        return _up(name, hosts, want_distros, want_cpus, fresh=fresh, podman_changed=podman_changed)


def _up(
    name: str,
    hosts: int,
    want_distros: list[str] | None,
    want_cpus: list[float | None] | None,
    *,
    fresh: bool,
    podman_changed: bool,
) -> Path:
    started = time.monotonic()
    if fresh:
        _down(name)
    _check_name_conflicts(name, hosts)

    existing = _existing_by_index(_sandbox_containers(name), name)
    plan = plan_hosts(
        name,
        hosts,
        want_distros,
        want_cpus,
        {i: item.get("Labels") or {} for i, item in existing.items()},
    )
    finished = _finished_ids(name)
    to_create = [
        h
        for h in plan
        if h.index not in existing
        or not _matches(existing[h.index], h, name)
        or str(existing[h.index].get("Id", "")) not in finished
    ]
    # The request is on disk before anything is created: an `up` that fails or is interrupted
    # part-way leaves a state that the next `up` completes to this size, never a smaller one.
    ids = {c: str(item.get("Id", "")) for c, item in _sandbox_containers(name).items()}
    _write_state(name, plan, ids, ready=finished)
    ensure_images([h.distro for h in to_create])
    public_key = _ensure_key(name)
    _ensure_network(name, subnet_for(name))
    if podman_changed and to_create:
        verify_podman(image_name(to_create[0].distro), name)

    for index, item in sorted(existing.items()):
        cname = item["Names"][0]
        if index > hosts:
            _podman("rm", "--force", "--time", "5", cname)
            console.print(f"[bold]sandbox:[/] removed {cname} (beyond --hosts {hosts})")
        elif plan[index - 1] in to_create:
            _podman("rm", "--force", "--time", "5", cname)
            why = (
                "recreating it as requested"
                if not _matches(item, plan[index - 1], name)
                else "an earlier `up` never finished it"
            )
            console.print(f"[bold]sandbox:[/] removed {cname} ({why})")
    for host in plan:
        if host in to_create:
            _run_container(name, host)
            console.print(
                f"[bold]sandbox:[/] started {host.name} ({host.distro}, {host.ip}"
                + (f", {host.cpus:g} CPUs" if host.cpus else "")
                + ")"
            )
        elif (state := existing[host.index].get("State")) == "paused":
            _podman("unpause", host.name)
            console.print(f"[bold]sandbox:[/] unpaused {host.name}")
        elif state != "running":
            _podman("start", host.name)
            console.print(f"[bold]sandbox:[/] started existing {host.name} (was {state})")
    with ThreadPoolExecutor(max_workers=min(8, len(plan))) as pool:
        list(pool.map(lambda h: _authorize_key(h.name, public_key), plan))

    ids = {c: str(item.get("Id", "")) for c, item in _sandbox_containers(name).items()}
    inventory = inventory_path(name)
    _write_atomic(inventory, render_inventory(name, plan, key_path(name)))
    _wait_for_ssh(plan, key_path(name))
    _write_state(name, plan, ids, ready=set(ids.values()))
    console.print(
        f"[bold]sandbox:[/] {name}: {hosts} host(s) ready over SSH in "
        f"{time.monotonic() - started:.1f} s; inventory: {inventory}"
    )
    return inventory


def down(*, name: str = DEFAULT_NAME) -> None:
    """Remove the sandbox NAME: its containers (by label), its network, its state directory."""
    validate_name(name)
    if _have("podman"):
        _require_root("down")
    with _locked(f"sandbox-{name}"):
        _down(name)


def _down(name: str) -> None:
    removed: list[str] = []
    if _have("podman"):
        containers = sorted(_sandbox_containers(name))
        if containers:
            _podman("rm", "--force", "--time", "5", *containers)
            removed += [f"container {c}" for c in containers]
        info = _network_info(name)
        if info is not None:
            if (info.get("labels") or {}).get(LABEL) == name:
                _podman("network", "rm", name)
                removed.append(f"network {name}")
            else:
                console.print(
                    f"[yellow]sandbox: left network {name!r} alone: not made by raykit sandbox[/]"
                )
        _prune_old_images()
    directory = state_dir(name)
    if directory.is_dir():
        shutil.rmtree(directory)
        removed.append(f"state {directory}")
    if removed:
        for item in removed:
            console.print(f"[bold]sandbox:[/] removed {item}")
    else:
        console.print(f"[bold]sandbox:[/] nothing to remove for {name}")


@dataclass(frozen=True)
class HostStatus:
    container: str
    distro: str
    ip: str
    state: str
    ssh: bool


def status(name: str = DEFAULT_NAME) -> list[HostStatus]:
    """The sandbox's hosts as podman sees them (labels are the truth), with an SSH probe."""
    validate_name(name)
    if not _have("podman"):
        return []
    _require_root("status")
    containers = _sandbox_containers(name)
    existing = _existing_by_index(containers, name)
    key = key_path(name)

    def probe(item: dict[str, Any]) -> HostStatus:
        labels = item.get("Labels") or {}
        ip = labels.get(f"{LABEL}.ip", "")
        state = str(item.get("State", "unknown"))
        reachable = state == "running" and key.is_file() and ssh_ok(key, ip, timeout=2)[0]
        return HostStatus(
            item["Names"][0], labels.get(f"{LABEL}.distro", "?"), ip, state, reachable
        )

    items = [existing[i] for i in sorted(existing)]
    items += [c for c in containers.values() if c not in items]
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(probe, items))
