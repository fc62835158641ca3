"""What every part of `raykit sandbox` shares: the names a sandbox is made of, its error, its
console, the repository root (where sandboxes keep their state), atomic writes and the lock
between raykit processes."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

DEFAULT_NAME = "raykit-sandbox"
DISTROS: dict[str, str] = {"bookworm": "Debian 12", "trixie": "Debian 13"}
LABEL = "raykit.sandbox"
SSH_USER = "admin"
MAX_HOSTS = 64

console = Console(stderr=True, highlight=False, soft_wrap=True)


class SandboxError(RuntimeError):
    """A sandbox operation failed; the message says what and what to do."""


def repo_root() -> Path:
    """The repository root (the package is installed editable from ``<repo>/runner``)."""
    return Path(__file__).resolve().parents[3]


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
