"""The control node made ready for the sandbox: podman and its helpers installed (as root), the
containers.conf drop-in (runtime runc, rlimits within this VM's hard limits), netavark's
firewall driver and what it runs, and a check that a container starts."""

from __future__ import annotations

import os
import resource
import tomllib
from collections.abc import Sequence
from pathlib import Path

from ._common import SandboxError, _write_atomic, console
from ._exec import _have, _is_root, _podman, _run

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
        "# Managed by raykit (`raykit sandbox`, runner/raykit/sandbox/). What podman needs on\n"
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
