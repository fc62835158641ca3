"""Helpers shared by the tests (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_by_path(path: Path, name: str) -> ModuleType:
    """Import a file that is not in a package: a filter plugin, a script shipped to hosts."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ansible_playbook(
    inventory: Path | str,
    playbook: Path | str,
    *args: str,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The venv's ansible-playbook with the repository's ansible.cfg, from the repository;
    `env` adds to the environment."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(REPO / playbook),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=timeout,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            **(env or {}),
        },
    )
