"""Narrow the universal lock to one target interpreter and platform, hashes kept.

pip evaluates environment markers against the interpreter it runs on, not the target of
`pip download --python-version`, so the control node evaluates them here instead:
    python lock_for_target.py LOCK OUT PYTHON_FULL_VERSION MACHINE
Uses only the standard library and `packaging` (a dependency of ansible-core).
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.markers import Marker


def entries(text: str) -> list[str]:
    """Requirement entries of a pip requirements file, continuation lines joined."""
    out: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line and not current:
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def narrow(text: str, python: str, machine: str) -> str:
    major_minor = ".".join(python.split(".")[:2])
    env = {
        "python_version": major_minor,
        "python_full_version": python,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": machine,
    }
    kept = []
    for entry in entries(text):
        parts = entry.split(" --hash=")
        req, hashes = parts[0], ["--hash=" + h.strip() for h in parts[1:]]
        spec, _, marker = req.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(env):
            continue
        kept.append(" \\\n    ".join([spec.strip(), *hashes]))
    header = f"# {python} on {machine}: narrowed from the universal lock by raykit\n"
    return header + "\n".join(kept) + "\n"


if __name__ == "__main__":
    lock, out, python, machine = sys.argv[1:5]
    text = narrow(Path(lock).read_text(encoding="utf-8"), python, machine)
    Path(out).write_text(text, encoding="utf-8")
