"""Running commands on this machine (podman among them), and what it has: commands, root."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ._common import SandboxError

# netavark and aardvark-dns live in podman's helper directories; firewall commands in sbin
# (not on every user's PATH).
_HELPER_DIRS = ("/usr/lib/podman", "/usr/libexec/podman", "/usr/sbin", "/sbin")


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


def _is_root() -> bool:
    return os.geteuid() == 0


def _require_root(command: str) -> None:
    if not _is_root():
        raise SandboxError(
            f"`raykit sandbox {command}` needs root: the sandbox uses rootful podman (systemd "
            "containers with fixed IPs on a bridge network); run it with sudo"
        )
