"""The rules for what a sandbox may be asked for (its name, distros, CPU limits, number of
hosts), one function each: the library and the command line's argument types both call them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ._common import DISTROS, MAX_HOSTS, SandboxError

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")


def validate_name(name: str) -> str:
    """A sandbox name becomes a network name, container names and hostnames: keep it DNS-safe."""
    if not _NAME_RE.match(name):
        raise SandboxError(
            f"invalid sandbox name {name!r}: use 1-48 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_distros(distros: Sequence[str]) -> list[str]:
    """Every one of ``distros`` is a distro the sandbox has an image recipe for (DISTROS)."""
    unknown = [d for d in distros if d not in DISTROS]
    if unknown:
        raise SandboxError(
            f"unknown distro {', '.join(map(repr, unknown))}: choose from {', '.join(DISTROS)}"
        )
    return list(distros)


def resolve_distros(distros: Sequence[str] | None, hosts: int) -> list[str] | None:
    """Expand ``--distro``: one value for all hosts or exactly one per host. None stays None."""
    if distros is None:
        return None
    values = validate_distros([d.strip() for d in distros])
    if len(values) == 1:
        return values * hosts
    if len(values) != hosts:
        raise SandboxError(
            f"--distro has {len(values)} values for {hosts} hosts: give one value or {hosts}"
        )
    return values


def validate_cpus(cpus: Sequence[float]) -> list[float]:
    """CPU limits are >= 0 (0 = no limit)."""
    values = list(cpus)
    for value in values:
        if not value >= 0:  # also catches NaN
            raise SandboxError(f"--cpus values must be >= 0 (0 = no limit), got {value}")
    return values


def resolve_cpus(cpus: Sequence[float] | None, hosts: int) -> list[float | None] | None:
    """Expand ``--cpus``: one value for all hosts or one per host; 0 means no limit."""
    if cpus is None:
        return None
    values = validate_cpus(cpus)
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


def validate_host_count(hosts: int, option: str = "--hosts") -> int:
    """A number of sandbox hosts, given as ``option``: 1 to MAX_HOSTS."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise SandboxError(f"{option} must be between 1 and {MAX_HOSTS}, got {hosts}")
    return hosts
