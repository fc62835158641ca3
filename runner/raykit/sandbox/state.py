"""A sandbox on paper: its hosts as planned (names, IPs, distros, CPUs), its state directory
(``<repo>/.raykit/NAME/``: state.json, SSH key, inventories) and the Ansible inventories made
from it: the sandbox's own, one of its first N hosts, one that plays another inventory's hosts."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ._common import DEFAULT_NAME, DISTROS, LABEL, SSH_USER, SandboxError, _write_atomic, repo_root
from .images import image_name
from .validate import validate_host_count, validate_name

FIRST_HOST_OCTET = 11
DEFAULT_SUBNET = ipaddress.IPv4Network("10.89.10.0/24")

# Ray's object store per sandbox host: half of the containers' --shm-size.
OBJECT_STORE_BYTES = 512 * 1024 * 1024

# Ray CPUs a CPU-limited sandbox host announces per core of its limit. Ray itself counts the
# whole cores of a container's limit (0 for 0.5: such a node gets no actor), so a limited host
# announces its share instead, in proportion: a quarter of a core is 1 CPU, 1.5 and 0.5 cores
# are 6 and 2.
CPUS_PER_CORE = 4


@dataclass(frozen=True)
class HostSpec:
    """One sandbox host as requested (and recorded in state.json)."""

    name: str  # container name = hostname = inventory name
    index: int  # 1-based
    ip: str
    distro: str
    cpus: float | None  # None: no CPU limit


def state_dir(name: str = DEFAULT_NAME) -> Path:
    return repo_root() / ".raykit" / validate_name(name)


def inventory_path(name: str = DEFAULT_NAME) -> Path:
    """Where `up` writes the sandbox's Ansible inventory."""
    return state_dir(name) / "inventory.yml"


def key_path(name: str = DEFAULT_NAME) -> Path:
    return state_dir(name) / "id_ed25519"


def default_distros(hosts: int) -> list[str]:
    """bookworm everywhere except the last host, which is trixie (when there are >= 2)."""
    if hosts < 2:
        return ["bookworm"] * hosts
    return ["bookworm"] * (hosts - 1) + ["trixie"]


def subnet_for(name: str = DEFAULT_NAME) -> ipaddress.IPv4Network:
    """The sandbox network's /24 (see the raykit.sandbox docstring for the rule)."""
    validate_name(name)
    if name == DEFAULT_NAME:
        return DEFAULT_SUBNET
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return ipaddress.IPv4Network(f"10.89.{FIRST_HOST_OCTET + digest % 240}.0/24")


def host_ip(subnet: ipaddress.IPv4Network, index: int) -> str:
    """The fixed IP of host number ``index`` (1-based): .11, .12, ..."""
    return str(subnet.network_address + FIRST_HOST_OCTET - 1 + index)


def container_name(name: str, index: int) -> str:
    return f"{name}-node{index}"


def plan_hosts(
    name: str,
    hosts: int,
    distros: Sequence[str] | None = None,
    cpus: Sequence[float | None] | None = None,
    existing: dict[int, dict[str, str]] | None = None,
) -> list[HostSpec]:
    """The hosts `up` should end with.

    ``distros``/``cpus`` are already expanded to one value per host, or None: then an existing
    host (``existing``: index -> its container labels) keeps what it has, and a new host gets
    the default (distro: see default_distros; CPUs: no limit).
    """
    validate_host_count(hosts)
    existing = existing or {}
    subnet = subnet_for(name)
    defaults = default_distros(hosts)
    plan = []
    for index in range(1, hosts + 1):
        labels = existing.get(index)
        if distros is not None:
            distro = distros[index - 1]
        elif labels and labels.get(f"{LABEL}.distro") in DISTROS:
            distro = labels[f"{LABEL}.distro"]
        else:
            distro = defaults[index - 1]
        if cpus is not None:
            cpu: float | None = cpus[index - 1]
        elif labels:
            cpu = _parse_cpus_label(labels.get(f"{LABEL}.cpus", ""))
        else:
            cpu = None
        plan.append(
            HostSpec(container_name(name, index), index, host_ip(subnet, index), distro, cpu)
        )
    return plan


def _parse_cpus_label(value: str) -> float | None:
    try:
        return float(value) or None
    except ValueError:
        return None


def _cpus_label(cpus: float | None) -> str:
    return "" if cpus is None else f"{cpus:g}"


def sandbox_vars(name: str, private_key: Path) -> dict[str, Any]:
    """What every sandbox host needs in any inventory, besides its own address."""
    return {
        "ansible_ssh_private_key_file": str(private_key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        "raykit_cluster_name": name,
        # Fits the containers' 1 GiB /dev/shm (Ray would ask for 30% of the host's RAM).
        "ray_node_object_store_memory": OBJECT_STORE_BYTES,
        # Prometheus' official archive cannot be downloaded from every machine (none
        # of GitHub here): the sandbox uses the distribution's package.
        "prometheus_source": "distro",
    }


def announced_cpus(cpus: float) -> int:
    """The Ray CPUs a host limited to `cpus` cores announces: CPUS_PER_CORE per core,
    rounded half up, at least 1."""
    return max(1, int(cpus * CPUS_PER_CORE + 0.5))


def host_vars(host: HostSpec) -> dict[str, Any]:
    """How to reach one sandbox host, and its cluster address; a CPU-limited host also
    announces its share of CPUs to Ray (announced_cpus)."""
    out: dict[str, Any] = {
        "ansible_host": host.ip,
        "raykit_node_ip": host.ip,
        "ansible_user": SSH_USER,
        "ansible_become": True,
    }
    if host.cpus is not None:
        out["ray_node_num_cpus"] = announced_cpus(host.cpus)
    return out


def render_inventory(name: str, hosts: Sequence[HostSpec], private_key: Path) -> str:
    """The sandbox's Ansible inventory (YAML), groups ray_head / ray_worker / monitoring."""
    inventory = {
        "all": {
            "vars": sandbox_vars(name, private_key),
            "hosts": {h.name: host_vars(h) for h in hosts},
            "children": {
                "ray_head": {"hosts": {hosts[0].name: None}},
                "ray_worker": {"hosts": {h.name: None for h in hosts[1:]}},
                "monitoring": {"hosts": {hosts[0].name: None}},
            },
        }
    }
    header = (
        f"# Generated by `raykit sandbox up` for the sandbox {name!r}: do not edit, every `up`\n"
        "# rewrites it and `raykit sandbox down` deletes it.\n"
        "# These are throw-away local hosts, so host-key checking is relaxed below\n"
        "# (StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null). Real inventories must not\n"
        "# do this.\n"
        "# Each host has a 1 GiB /dev/shm, so the object store is sized to fit it; Prometheus\n"
        "# comes from the distribution's package (its official archive needs GitHub).\n"
        f"# A host with a CPU limit (--cpus) announces {CPUS_PER_CORE} Ray CPUs per core of it\n"
        "# (ray_node_num_cpus; at least 1), so that unequal hosts keep their proportions.\n"
    )
    body: str = yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)
    # Group members read better as `name:` than as `name: null` (the same to Ansible).
    return header + body.replace(": null\n", ":\n")


def _write_state(
    name: str, hosts: Sequence[HostSpec], containers: dict[str, str], *, ready: set[str]
) -> None:
    """state.json: the hosts requested (all of them, written before any is created) and, per
    host, its container and whether an `up` finished it (running, key authorized, SSH and
    systemd ready). ``complete`` is true once every requested host is ready."""
    subnet = subnet_for(name)
    rows = []
    for h in hosts:
        cid = containers.get(h.name, "")
        rows.append(
            {
                **asdict(h),
                "container_id": cid,
                "image": image_name(h.distro),
                "ready": bool(cid) and cid in ready,
            }
        )
    state = {
        "name": name,
        "network": {"name": name, "subnet": str(subnet), "gateway": str(subnet[1])},
        "inventory": str(inventory_path(name)),
        "private_key": str(key_path(name)),
        "user": SSH_USER,
        "requested_hosts": len(hosts),
        "complete": all(r["ready"] for r in rows),
        "hosts": rows,
    }
    state_dir(name).mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomic(state_dir(name) / "state.json", json.dumps(state, indent=2) + "\n")


def _finished_ids(name: str) -> set[str]:
    """Container IDs that an earlier `up` finished (state.json's ready hosts). A state written
    before the ``ready`` field existed counts every recorded container as finished."""
    state = read_state(name) or {}
    return {
        str(h.get("container_id"))
        for h in state.get("hosts", [])
        if h.get("container_id") and h.get("ready", True)
    }


def read_state(name: str = DEFAULT_NAME) -> dict[str, Any] | None:
    """state.json as written by the last `up`, or None."""
    try:
        data: dict[str, Any] = json.loads((state_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def subset_inventory(name: str, nodes: int) -> Path:
    """An inventory of the sandbox's first `nodes` hosts (the first is the head), written
    beside the full one: a smaller cluster on the same hosts, e.g. 1 node vs 3."""
    state = read_state(name)
    if state is None:
        raise SandboxError(f"sandbox {name!r} does not exist: run `raykit sandbox up` first")
    hosts = [HostSpec(**{f: h[f] for f in HostSpec.__dataclass_fields__}) for h in state["hosts"]]
    if not 1 <= nodes <= len(hosts):
        raise SandboxError(f"sandbox {name!r} has {len(hosts)} host(s); cannot make {nodes}")
    path = state_dir(name) / f"inventory-{nodes}.yml"
    _write_atomic(path, render_inventory(name, hosts[:nodes], key_path(name)))
    return path


def play_inventory(name: str, lab: Path, inventory_json: dict[str, Any] | None = None) -> Path:
    """An inventory that lets the sandbox's hosts play the hosts of inventory ``lab``: given
    after it (``-i LAB -i THIS``), it gives each of LAB's hosts, head first, then workers, then
    monitoring-only hosts, a sandbox host's address and SSH settings (host variables, which win
    over LAB's group_vars) and names the cluster after the sandbox, so its secrets never mix
    with the real lab's. LAB itself is not changed."""
    from raykit.cluster import ClusterError, _group_hosts, _inventory_json

    state = read_state(name)
    if state is None or not state.get("complete"):
        raise SandboxError(f"sandbox {name!r} is not up: run `raykit sandbox up --name {name}`")
    hosts = [HostSpec(**{f: h[f] for f in HostSpec.__dataclass_fields__}) for h in state["hosts"]]
    try:
        inv = inventory_json if inventory_json is not None else _inventory_json(str(lab))
    except ClusterError as exc:
        raise SandboxError(str(exc)) from None
    order: list[str] = []
    for group in ("ray_head", "ray_worker", "monitoring", "all"):
        order += [h for h in _group_hosts(inv, group) if h not in order]
    if not order:
        raise SandboxError(f"the inventory {lab} has no hosts")
    if len(order) > len(hosts):
        raise SandboxError(
            f"the inventory {lab} has {len(order)} hosts and sandbox {name!r} {len(hosts)}: "
            f"run `raykit sandbox up --name {name} --hosts {len(order)}`"
        )
    overlay = {
        "all": {
            "hosts": {
                # Host variables, so they win over the lab's group_vars; port 22 replaces a
                # port the lab may give (a WSL host's 2222).
                lab_host: {
                    **sandbox_vars(name, key_path(name)),
                    **host_vars(sbx),
                    "ansible_port": 22,
                }
                for lab_host, sbx in zip(order, hosts, strict=False)
            }
        }
    }
    header = (
        f"# Generated by `raykit sandbox inventory --play {lab}`: the hosts of {lab} played by\n"
        f"# the sandbox {name!r} (a host each: {', '.join(order)}). Give it after the lab:\n"
        f"#   ansible-playbook site.yml -i {lab} -i THIS_FILE\n"
        "# Throw-away hosts: host-key checking is relaxed here, never in the lab itself.\n"
    )
    path = state_dir(name) / f"play-{Path(lab).resolve().name}.yml"
    _write_atomic(path, header + yaml.safe_dump(overlay, sort_keys=False))
    return path
