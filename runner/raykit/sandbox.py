"""`raykit sandbox`: throw-away local test hosts.

A sandbox is a set of podman containers that behave like small lab hosts: each runs systemd as
PID 1 and sshd, has its own hostname and a fixed IP on its own podman network, and is reached by
Ansible over SSH as `admin`, a passwordless sudoer (as a real lab's Ansible user would be).

What a sandbox called NAME consists of, all created and removed by name or label only:

- podman network NAME (netavark, label ``raykit.sandbox=NAME``) with a fixed /24 subnet:
  ``10.89.10.0/24`` for the default name ``raykit-sandbox``; for any other name the third octet
  is ``11 + sha256(NAME) % 240`` (11..250), so the subnet is deterministic, never the default
  one, and clear of podman's own automatic subnets (``10.89.0.0/24``, ``10.89.1.0/24``, ...).
  A name whose subnet is already in use by another network is refused with a clear error.
- containers ``NAME-node1 .. NAME-nodeN`` (label ``raykit.sandbox=NAME``), hostname = container
  name, IPs ``.11``, ``.12``, ... of that subnet;
- ``<repo>/.raykit/NAME/``: the SSH key pair (``id_ed25519``), ``inventory.yml`` and
  ``state.json``.

Images ``localhost/raykit-sandbox:<suite>`` (bookworm = Debian 12, trixie = Debian 13) are built
locally with debootstrap from Debian's mirror (no image registry needed) and kept as a cache;
their label ``raykit.sandbox.recipe`` is a hash of the recipe, so a changed recipe rebuilds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

DEFAULT_NAME = "raykit-sandbox"
DISTROS: dict[str, str] = {"bookworm": "Debian 12", "trixie": "Debian 13"}
IMAGE_REPO = "localhost/raykit-sandbox"
LABEL = "raykit.sandbox"
SSH_USER = "admin"
MAX_HOSTS = 64
FIRST_HOST_OCTET = 11
DEFAULT_SUBNET = ipaddress.IPv4Network("10.89.10.0/24")
SSH_TIMEOUT = 90.0  # seconds for all hosts to accept SSH after `up` started them

# Debian packages a fresh control node needs for the sandbox, by the command that must exist.
HOST_PACKAGES: dict[str, str] = {
    "podman": "podman",
    "runc": "runc",
    "netavark": "netavark",
    "aardvark-dns": "aardvark-dns",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
# netavark and aardvark-dns live in podman's helper directories; firewall commands in sbin
# (not on every user's PATH).
_HELPER_DIRS = ("/usr/lib/podman", "/usr/libexec/podman", "/usr/sbin", "/sbin")

# What netavark's firewall driver runs, by driver (`firewall_driver` in containers.conf, or the
# NETAVARK_FW environment variable): (command, Debian package). Without it netavark cannot set
# up a bridge network ("netavark: No such file or directory"). firewalld's driver talks to
# firewalld over D-Bus and "none" runs nothing.
FIREWALL_PACKAGES: dict[str, tuple[str, str]] = {
    "iptables": ("iptables", "iptables"),
    "nftables": ("nft", "nftables"),
}
# netavark's built-in default when nothing configures one: iptables in Debian's builds (and
# the only one netavark < 1.9, Debian 12's 1.4, has besides firewalld).
DEFAULT_FIREWALL_DRIVER = "iptables"
CONTAINERS_CONF_FILES = (
    Path("/usr/share/containers/containers.conf"),
    Path("/etc/containers/containers.conf"),
)

CONTAINERS_CONF_DROPIN = Path("/etc/containers/containers.conf.d/50-raykit.conf")
NPROC_MAX = 32768

# The image recipe. Bump _RECIPE_REVISION whenever build_image() changes what it puts in the
# image or _run_container() how a container runs; the recipe hash (a label of the image and of
# each container) covers this, the package list and data/sandbox/rootfs/.
_RECIPE_REVISION = 2
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "python3-packaging",
    "sudo",
    "iproute2",
    "procps",
    "ca-certificates",
    # What a Debian host has by default, and what raykit's firewall needs.
    "nftables",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DATA_DIR = Path(__file__).resolve().parent / "data" / "sandbox"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")

console = Console(stderr=True, highlight=False, soft_wrap=True)


class SandboxError(RuntimeError):
    """A sandbox operation failed; the message says what and what to do."""


@dataclass(frozen=True)
class HostSpec:
    """One sandbox host as requested (and recorded in state.json)."""

    name: str  # container name = hostname = inventory name
    index: int  # 1-based
    ip: str
    distro: str
    cpus: float | None  # None: no CPU limit


# --------------------------------------------------------------------------------------------
# Paths and pure helpers (no podman needed)
# --------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The repository root (the package is installed editable from ``<repo>/runner``)."""
    return Path(__file__).resolve().parents[2]


def state_dir(name: str = DEFAULT_NAME) -> Path:
    return repo_root() / ".raykit" / validate_name(name)


def inventory_path(name: str = DEFAULT_NAME) -> Path:
    """Where `up` writes the sandbox's Ansible inventory."""
    return state_dir(name) / "inventory.yml"


def key_path(name: str = DEFAULT_NAME) -> Path:
    return state_dir(name) / "id_ed25519"


def validate_name(name: str) -> str:
    """A sandbox name becomes a network name, container names and hostnames: keep it DNS-safe."""
    if not _NAME_RE.match(name):
        raise SandboxError(
            f"invalid sandbox name {name!r}: use 1-48 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def default_distros(hosts: int) -> list[str]:
    """bookworm everywhere except the last host, which is trixie (when there are >= 2)."""
    if hosts < 2:
        return ["bookworm"] * hosts
    return ["bookworm"] * (hosts - 1) + ["trixie"]


def resolve_distros(distros: Sequence[str] | None, hosts: int) -> list[str] | None:
    """Expand ``--distro``: one value for all hosts or exactly one per host. None stays None."""
    if distros is None:
        return None
    values = [d.strip() for d in distros]
    unknown = [d for d in values if d not in DISTROS]
    if unknown:
        raise SandboxError(
            f"unknown distro {', '.join(map(repr, unknown))}: choose from {', '.join(DISTROS)}"
        )
    if len(values) == 1:
        return values * hosts
    if len(values) != hosts:
        raise SandboxError(
            f"--distro has {len(values)} values for {hosts} hosts: give one value or {hosts}"
        )
    return values


def resolve_cpus(cpus: Sequence[float] | None, hosts: int) -> list[float | None] | None:
    """Expand ``--cpus``: one value for all hosts or one per host; 0 means no limit."""
    if cpus is None:
        return None
    values = list(cpus)
    for value in values:
        if not value >= 0:  # also catches NaN
            raise SandboxError(f"--cpus values must be >= 0 (0 = no limit), got {value}")
    available = os.cpu_count() or 1
    too_many = [v for v in values if v > available]
    if too_many:
        raise SandboxError(f"--cpus {too_many[0]:g} is more than this machine's {available} CPUs")
    if len(values) == 1:
        values = values * hosts
    elif len(values) != hosts:
        raise SandboxError(
            f"--cpus has {len(values)} values for {hosts} hosts: give one value or {hosts}"
        )
    return [v if v > 0 else None for v in values]


def subnet_for(name: str = DEFAULT_NAME) -> ipaddress.IPv4Network:
    """The sandbox network's /24 (see the module docstring for the rule)."""
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
    if not 1 <= hosts <= MAX_HOSTS:
        raise SandboxError(f"--hosts must be between 1 and {MAX_HOSTS}, got {hosts}")
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


# Ray's object store per sandbox host: half of the containers' --shm-size.
OBJECT_STORE_BYTES = 512 * 1024 * 1024


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


def host_vars(host: HostSpec) -> dict[str, Any]:
    """How to reach one sandbox host, and its cluster address."""
    return {
        "ansible_host": host.ip,
        "raykit_node_ip": host.ip,
        "ansible_user": SSH_USER,
        "ansible_become": True,
    }


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
    )
    body: str = yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)
    # Group members read better as `name:` than as `name: null` (the same to Ansible).
    return header + body.replace(": null\n", ":\n")


# --------------------------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------------------------


def _run(
    args: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(args),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"{args[0]} is not installed ({exc})") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise SandboxError(f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{detail}")
    return proc


def _podman(*args: str, check: bool = True, input_text: str | None = None) -> str:
    return _run(["podman", *args], check=check, input_text=input_text).stdout


def _have(command: str) -> bool:
    if shutil.which(command):
        return True
    return any(Path(d, command).is_file() for d in _HELPER_DIRS)


# --------------------------------------------------------------------------------------------
# Podman on this machine
# --------------------------------------------------------------------------------------------


def _wanted_limits() -> tuple[int, int]:
    """nofile and nproc for the containers: podman's defaults exceed what this VM allows."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if nofile == resource.RLIM_INFINITY:
        nofile = 1048576
    if nproc == resource.RLIM_INFINITY or nproc > NPROC_MAX:
        nproc = NPROC_MAX
    return nofile, nproc


def containers_conf_dropin() -> str:
    nofile, nproc = _wanted_limits()
    return (
        "# Managed by raykit (`raykit sandbox`, runner/raykit/sandbox.py). What podman needs on\n"
        "# this machine kind: crun refuses the hybrid cgroup layout, and the VM lacks\n"
        "# CAP_SYS_RESOURCE, so the default rlimits must stay within the hard limits.\n"
        "[containers]\n"
        "default_ulimits = [\n"
        f'  "nofile={nofile}:{nofile}",\n'
        f'  "nproc={nproc}:{nproc}",\n'
        "]\n"
        "\n"
        "[engine]\n"
        'runtime = "runc"\n'
    )


def _dropin_ok(path: Path) -> bool:
    """True when our drop-in exists, says runtime runc, and its limits fit this process."""
    try:
        conf = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    if conf.get("engine", {}).get("runtime") != "runc":
        return False
    limits: dict[str, int] = {}
    for item in conf.get("containers", {}).get("default_ulimits", []):
        key, _, value = str(item).partition("=")
        soft, _, hard = value.partition(":")
        try:
            limits[key] = max(int(soft), int(hard or soft))
        except ValueError:
            return False
    nofile, nproc = _wanted_limits()
    return 0 < limits.get("nofile", 0) <= nofile and 0 < limits.get("nproc", 0) <= nproc


def _is_root() -> bool:
    return os.geteuid() == 0


def _require_root(command: str) -> None:
    if not _is_root():
        raise SandboxError(
            f"`raykit sandbox {command}` needs root: the sandbox uses rootful podman (systemd "
            "containers with fixed IPs on a bridge network); run it with sudo"
        )


def _apt_install(packages: Sequence[str]) -> None:
    if not _is_root():
        raise SandboxError(
            f"raykit sandbox needs {', '.join(packages)}; install them as root, e.g.\n"
            f"  sudo apt-get install -y {' '.join(packages)}\n"
            "(the sandbox uses rootful podman: run raykit sandbox as root)"
        )
    console.print(f"[bold]sandbox:[/] installing {' '.join(packages)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], env=env)
    _run(["apt-get", "install", "-y", "-q", *packages], env=env)


def ensure_podman() -> bool:
    """Make podman usable for the sandbox on this machine. Returns True when it changed anything.

    Installs the Debian packages when missing (as root), and writes the containers.conf drop-in
    (runtime runc; rlimits within this VM's hard limits). Podman 4.3.1 reads
    ``/etc/containers/containers.conf.d/*.conf`` after ``containers.conf``, so the drop-in wins
    and ``containers.conf`` itself is left alone. A second call only reads a file.
    """
    changed = False
    wanted = dict(HOST_PACKAGES)
    driver = netavark_firewall_driver()
    if driver in FIREWALL_PACKAGES:
        command, package = FIREWALL_PACKAGES[driver]
        wanted[command] = package
    missing = sorted({pkg for cmd, pkg in wanted.items() if not _have(cmd)})
    if missing:
        _apt_install(missing)
        changed = True
    if not _dropin_ok(CONTAINERS_CONF_DROPIN):
        if not _is_root():
            raise SandboxError(
                f"podman needs {CONTAINERS_CONF_DROPIN} on this machine; run as root, or create "
                f"it with:\n{containers_conf_dropin()}"
            )
        CONTAINERS_CONF_DROPIN.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(CONTAINERS_CONF_DROPIN, containers_conf_dropin(), mode=0o644)
        console.print(f"[bold]sandbox:[/] wrote {CONTAINERS_CONF_DROPIN}")
        changed = True
    if changed:
        backend = _podman("info", "--format", "{{.Host.NetworkBackend}}").strip()
        if backend != "netavark":
            console.print(
                f"[yellow]sandbox: podman's network backend is {backend!r}, not netavark: "
                "host names will not resolve between sandbox hosts (IPs still work)[/]"
            )
    return changed


def netavark_firewall_driver() -> str:
    """The firewall driver netavark will use on this machine.

    NETAVARK_FW wins, then the last ``[network] firewall_driver`` of containers.conf and its
    drop-ins (in podman's reading order), then netavark's built-in default.
    """
    from_env = os.environ.get("NETAVARK_FW", "").strip()
    if from_env:
        return from_env
    driver = DEFAULT_FIREWALL_DRIVER
    dropins = sorted(CONTAINERS_CONF_DROPIN.parent.glob("*.conf"))
    for path in (*CONTAINERS_CONF_FILES, *dropins):
        try:
            conf = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        value = str(conf.get("network", {}).get("firewall_driver", "")).strip()
        if value:
            driver = value
    return driver


def verify_podman(image: str, network: str) -> None:
    """Prove podman can start a container here on the sandbox's bridge network (runtime,
    rlimits, netavark and its firewall driver), with a clear error if not."""
    proc = _run(
        ["podman", "run", "--rm", f"--network={network}", "--systemd=false", image, "/bin/true"],
        check=False,
    )
    if proc.returncode != 0:
        driver = netavark_firewall_driver()
        needs = FIREWALL_PACKAGES.get(driver)
        hint = f" (package {needs[1]}, command {needs[0]})" if needs else ""
        raise SandboxError(
            f"podman cannot start a container on this machine:\n{proc.stderr.strip()}\n"
            f"Check {CONTAINERS_CONF_DROPIN}, `podman info`, and netavark's firewall driver "
            f"{driver!r}{hint}."
        )


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def image_name(distro: str) -> str:
    return f"{IMAGE_REPO}:{distro}"


def _overlay_files() -> list[Path]:
    root = DATA_DIR / "rootfs"
    return sorted(p for p in root.rglob("*") if p.is_file())


def recipe_hash(distro: str) -> str:
    """A content hash of everything that goes into the image for ``distro``."""
    h = hashlib.sha256()
    h.update(f"revision={_RECIPE_REVISION}\nsuite={distro}\n".encode())
    h.update(f"packages={','.join(IMAGE_PACKAGES)}\nuser={SSH_USER}\n".encode())
    root = DATA_DIR / "rootfs"
    for path in _overlay_files():
        h.update(f"file={path.relative_to(root).as_posix()}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _image_recipe(image: str) -> str | None:
    """The recipe label of a local image, "" when unlabelled, None when the image is missing."""
    proc = _run(["podman", "image", "inspect", "--format", "json", image], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    if not data:
        return None
    labels = (data[0].get("Config") or {}).get("Labels") or data[0].get("Labels") or {}
    return str(labels.get(f"{LABEL}.recipe", ""))


def image_is_current(distro: str) -> bool:
    return _image_recipe(image_name(distro)) == recipe_hash(distro)


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    found = []
    prefix = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(Path(mount_point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _remove_build_dir(path: Path) -> None:
    """Remove a build directory; first unmount whatever a failed debootstrap left mounted in it
    (never delete through a mount: /proc or a bind-mounted /dev would hurt the host)."""
    for mount_point in _mounts_under(path):
        _run(["umount", "--lazy", str(mount_point)], check=False)
    left = _mounts_under(path)
    if left:
        console.print(
            f"[red]sandbox: not deleting {path}: still mounted: {', '.join(map(str, left))}[/]"
        )
        return
    shutil.rmtree(path, ignore_errors=True)


def _customize_rootfs(rootfs: Path) -> None:
    """Everything build_image() does between debootstrap and import."""
    # Our files (ssh.service and sshd drop-ins, sudoers) over the root file system.
    overlay_root = DATA_DIR / "rootfs"
    for src in _overlay_files():
        rel = src.relative_to(overlay_root)
        dest = rootfs / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o440 if rel.parts[:2] == ("etc", "sudoers.d") else 0o644)
    _run(["chroot", str(rootfs), "visudo", "-c", "-q", "-f", "/etc/sudoers.d/raykit-admin"])
    # The Ansible user: a passwordless sudoer whose authorized_keys `up` fills in.
    chroot = ["chroot", str(rootfs)]
    _run([*chroot, "useradd", "--create-home", "--shell", "/bin/bash", SSH_USER])
    _run(
        [*chroot, *f"install -d -m 0700 -o {SSH_USER} -g {SSH_USER} /home/{SSH_USER}/.ssh".split()]
    )
    # No shared secrets or identities in the image: host keys come at first boot, and an
    # empty machine-id makes systemd give every container its own.
    for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc" / "machine-id").write_text("")
    dbus_id = rootfs / "var" / "lib" / "dbus" / "machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    # Apt caches and lists (hosts run `apt-get update` before installing anything).
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file() and path.name != "lock":
                path.unlink()
    for log in ("var/log/bootstrap.log", "var/log/dpkg.log", "var/log/alternatives.log"):
        (rootfs / log).unlink(missing_ok=True)


def build_image(distro: str, *, mirror: str | None = None) -> str:
    """Build ``localhost/raykit-sandbox:<distro>`` from Debian's mirror; returns the image ID.

    debootstrap (minbase + systemd, sshd, python3, sudo) into a temporary directory, customise
    it (see _customize_rootfs), then ``tar | podman import``. The temporary directory is
    removed even when a step fails. Needs root (debootstrap, chroot). ``mirror`` (or the
    environment variable RAYKIT_DEBIAN_MIRROR) replaces http://deb.debian.org/debian.
    """
    if distro not in DISTROS:
        raise SandboxError(f"unknown distro {distro!r}: choose from {', '.join(DISTROS)}")
    if not _is_root():
        raise SandboxError("building the sandbox image needs root (debootstrap, chroot)")
    if not _have("debootstrap"):
        _apt_install(["debootstrap"])
    mirror = mirror or os.environ.get("RAYKIT_DEBIAN_MIRROR") or DEFAULT_MIRROR
    image = image_name(distro)
    recipe = recipe_hash(distro)
    old_id = _podman("image", "ls", "-q", "--no-trunc", image, check=False).strip()
    old_id = old_id.splitlines()[0].removeprefix("sha256:") if old_id else ""
    build_dir = Path(tempfile.mkdtemp(prefix=f"raykit-sandbox-{distro}-"))
    try:
        rootfs = build_dir / "rootfs"
        log = build_dir / "debootstrap.log"
        include = ",".join(IMAGE_PACKAGES)
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={include}",
            distro,
            str(rootfs),
            mirror,
        ]
        with log.open("w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            inner = rootfs / "debootstrap" / "debootstrap.log"
            if inner.is_file():
                tail += "\n--- debootstrap/debootstrap.log ---\n" + "\n".join(
                    inner.read_text(errors="replace").splitlines()[-25:]
                )
            raise SandboxError(f"debootstrap {distro} failed (exit {proc.returncode}):\n{tail}")
        _customize_rootfs(rootfs)
        image_id = _import_rootfs(rootfs, image, distro, recipe)
    finally:
        _remove_build_dir(build_dir)
    if old_id and old_id != image_id:
        _prune_old_images()
    return image_id


def _prune_old_images() -> None:
    """Remove earlier builds of our images (untagged, labelled by us) that no container uses."""
    out = _podman(
        "images",
        "--quiet",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        f"label={LABEL}.recipe",
        check=False,
    )
    for image_id in dict.fromkeys(out.split()):
        _podman("image", "rm", image_id, check=False)  # fails, harmlessly, while still in use


def _import_rootfs(rootfs: Path, image: str, distro: str, recipe: str) -> str:
    changes = [
        'CMD ["/sbin/init"]',
        "STOPSIGNAL SIGRTMIN+3",
        f"LABEL {LABEL}.recipe={recipe}",
        f"LABEL {LABEL}.distro={distro}",
    ]
    podman_cmd = ["podman", "import", "--quiet"]
    for change in changes:
        podman_cmd += ["--change", change]
    podman_cmd += ["--message", f"raykit sandbox {distro} ({recipe})", "-", image]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    try:
        importer = subprocess.run(
            podman_cmd, stdin=tar.stdout, capture_output=True, text=True, check=False
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or importer.returncode != 0:
        raise SandboxError(
            f"importing {image} failed (tar exit {tar_rc}, podman exit {importer.returncode}):\n"
            f"{importer.stderr.strip()}"
        )
    return importer.stdout.strip().removeprefix("sha256:")


def ensure_images(distros: Sequence[str], *, parallel: bool = True) -> list[str]:
    """Build the images for ``distros`` that are missing or from an older recipe.

    Returns the distros built. Two builds run at once by default (debootstrap mostly waits
    on the network).
    """
    wanted = list(dict.fromkeys(distros))
    if all(image_is_current(d) for d in wanted):
        return []
    with _locked("images"):
        todo = [d for d in wanted if not image_is_current(d)]  # another process may have built
        _build_images(todo, parallel=parallel)
    return todo


def _build_images(todo: Sequence[str], *, parallel: bool) -> None:
    if not todo:
        return

    def build(distro: str) -> None:
        started = time.monotonic()
        console.print(
            f"[bold]sandbox:[/] building {image_name(distro)} ({DISTROS[distro]}, debootstrap; "
            "about a minute)"
        )
        build_image(distro)
        console.print(
            f"[bold]sandbox:[/] built {image_name(distro)} in {time.monotonic() - started:.0f} s"
        )

    if parallel and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for future in [pool.submit(build, d) for d in todo]:
                future.result()
    else:
        for distro in todo:
            build(distro)


# --------------------------------------------------------------------------------------------
# Containers, network, SSH
# --------------------------------------------------------------------------------------------


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


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(what: str) -> Iterator[None]:
    """Serialise raykit processes on ``what`` (one sandbox, or the image builds)."""
    directory = repo_root() / ".raykit" / ".locks"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{what}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            console.print(f"[bold]sandbox:[/] waiting for another raykit process ({what})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


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


# --------------------------------------------------------------------------------------------
# up / down / status
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _comma_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty item in {value!r}")
    return items


def _distro_list(value: str) -> list[str]:
    items = _comma_list(value)
    unknown = [d for d in items if d not in DISTROS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown distro {', '.join(map(repr, unknown))} (choose from {', '.join(DISTROS)})"
        )
    return items


def _cpus_list(value: str) -> list[float]:
    try:
        items = [float(v) for v in _comma_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {value!r}") from None
    if any(not v >= 0 for v in items):
        raise argparse.ArgumentTypeError(f"CPU counts must be >= 0 (0 = no limit): {value!r}")
    return items


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= number <= MAX_HOSTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_HOSTS}: {value!r}")
    return number


def _sandbox_name(value: str) -> str:
    try:
        return validate_name(value)
    except SandboxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def up_args(args: argparse.Namespace, current_hosts: int | None = None) -> dict[str, Any]:
    """Keyword arguments for up() from parsed CLI arguments; ValueError on inconsistent counts.

    Without --hosts, the number of hosts is the length of a --distro/--cpus list, else the
    sandbox's current number of hosts (``current_hosts``), else 3: a plain `up` never shrinks.
    """
    lengths = {len(v) for v in (args.distro, args.cpus) if v is not None and len(v) > 1}
    if args.hosts is None and len(lengths) > 1:
        raise ValueError(
            f"--distro has {len(args.distro)} values and --cpus {len(args.cpus)}: "
            "give one per host, the same number in both"
        )
    if args.hosts is not None:
        hosts: int = args.hosts
    elif lengths:
        hosts = lengths.pop()
    else:
        hosts = current_hosts or 3
    try:
        resolve_distros(args.distro, hosts)
        resolve_cpus(args.cpus, hosts)
    except SandboxError as exc:
        raise ValueError(str(exc)) from None
    return {
        "name": args.name,
        "hosts": hosts,
        "distros": args.distro,
        "cpus": args.cpus,
        "fresh": args.fresh,
    }


def _current_host_count(name: str) -> int | None:
    """How many hosts the sandbox is meant to have: the number the last `up` asked for (in
    state.json, written before anything is created, so a failed `up` still counts), else the
    containers it has (by label); None when it has neither."""
    state = read_state(name)
    if state and state.get("hosts"):
        return len(state["hosts"])
    if not _have("podman"):
        return None
    try:
        return len(_existing_by_index(_sandbox_containers(name), name)) or None
    except SandboxError:
        return None


def _guard(command: str, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except SandboxError as exc:
        console.print(f"[red]raykit sandbox {command}: error:[/] {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:
        console.print(f"[red]raykit sandbox {command}: interrupted[/]")
        return 130


def _cmd_up(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.sandbox_parser
    try:
        kwargs = up_args(args, _current_host_count(args.name))
    except ValueError as exc:
        parser.error(str(exc))

    def run() -> int:
        path = up(**kwargs)
        sys.stdout.write(f"{path}\n")
        sys.stdout.flush()
        return 0

    return _guard("up", run)


def _cmd_inventory(args: argparse.Namespace) -> int:
    def run() -> int:
        if args.play:
            path = play_inventory(args.name, Path(args.play))
        else:
            path = subset_inventory(args.name, args.nodes)
        sys.stdout.write(f"{path}\n")
        return 0

    return _guard("inventory", run)


def _cmd_down(args: argparse.Namespace) -> int:
    def run() -> int:
        down(name=args.name)
        return 0

    return _guard("down", run)


def _cmd_status(args: argparse.Namespace) -> int:
    def run() -> int:
        hosts = status(args.name)
        out = Console(highlight=False)
        if not hosts:
            out.print(f"sandbox {args.name}: no containers")
            return 1
        table = Table(title=f"sandbox {args.name}")
        for column in ("container", "distro", "IP", "state", "ssh ok"):
            table.add_column(column)
        for h in hosts:
            table.add_row(
                h.container, h.distro, h.ip, h.state, "[green]yes[/]" if h.ssh else "[red]no[/]"
            )
        out.print(table)
        if inventory_path(args.name).is_file():
            out.print(f"inventory: {inventory_path(args.name)}")
        return 0 if all(h.ssh for h in hosts) else 1

    return _guard("status", run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `raykit sandbox {up,down,status}`; each sub-command sets ``func(args) -> int``."""
    sandbox = subparsers.add_parser(
        "sandbox",
        help="throw-away local test hosts (podman containers with systemd and sshd)",
        description=(
            "Throw-away local test hosts: podman containers running systemd and sshd, each with "
            "its own hostname and IP, reached over SSH as a sudoer. `up` prints the path of "
            "their Ansible inventory as its last line."
        ),
    )
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True)

    def add(cmd: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> Any:
        parser = commands.add_parser(cmd, help=help_text, description=help_text)
        parser.add_argument(
            "--name",
            type=_sandbox_name,
            default=DEFAULT_NAME,
            help=f"sandbox name: network, container prefix, state dir (default: {DEFAULT_NAME})",
        )
        parser.set_defaults(func=func, sandbox_parser=parser)
        return parser

    up_parser = add("up", "create or update the sandbox; print its inventory path", _cmd_up)
    up_parser.add_argument(
        "--hosts",
        type=_positive_int,
        default=None,
        help="number of hosts (default: the length of --distro/--cpus lists, else the sandbox's "
        "current number, else 3)",
    )
    up_parser.add_argument(
        "--distro",
        type=_distro_list,
        default=None,
        metavar="D[,D...]",
        help=f"{' or '.join(DISTROS)}: one for all hosts or one per host (default: the last host "
        "trixie, the others bookworm; existing hosts keep theirs)",
    )
    up_parser.add_argument(
        "--cpus",
        type=_cpus_list,
        default=None,
        metavar="C[,C...]",
        help="CPU limit: one for all hosts or one per host, 0 = no limit (default: none)",
    )
    up_parser.add_argument(
        "--fresh", action="store_true", help="remove the whole sandbox first, then create it"
    )
    inv_parser = add(
        "inventory",
        "write an inventory of the first N hosts (same hosts, smaller cluster), or one that "
        "lets the sandbox play the hosts of your inventory; print its path",
        _cmd_inventory,
    )
    which = inv_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--nodes", type=_positive_int, help="N")
    which.add_argument(
        "--play",
        metavar="INVENTORY",
        help="the sandbox's hosts play INVENTORY's (use: ansible-playbook site.yml -i INVENTORY "
        "-i PRINTED_PATH)",
    )
    add("down", "remove the sandbox's containers, network and state", _cmd_down)
    add("status", "show the sandbox's hosts: state, IP, SSH reachability", _cmd_status)
