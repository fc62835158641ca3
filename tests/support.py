"""Helpers shared by the tests (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

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


def raykit(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """The venv's `raykit` command, as a user types it; output captured, never raises."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "raykit"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------- Prometheus replay

PROMETHEUS_FIXTURES = REPO / "tests" / "fixtures" / "prometheus"


class FakeResponse:
    """What raykit.metrics reads of a requests.Response."""

    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body
        self.text = body if isinstance(body, str) else json.dumps(body)

    def json(self) -> Any:
        if isinstance(self._body, str):
            return json.loads(self._body)  # raises ValueError, as requests does
        return self._body


class ReplaySession:
    """Serves the recorded answer to the exact same request (path and form parameters)."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.answers: dict[tuple[str, tuple[tuple[str, str], ...]], deque[FakeResponse]] = (
            defaultdict(deque)
        )
        for ex in exchanges:
            key = (ex["path"], tuple(sorted(ex["params"].items())))
            self.answers[key].append(FakeResponse(ex["status"], ex["body"]))
        self.calls = 0

    def post(self, url: str, data: dict[str, str], timeout: float) -> FakeResponse:
        self.calls += 1
        key = (re.sub(r"^https?://[^/]+", "", url), tuple(sorted(data.items())))
        if not self.answers.get(key):
            raise AssertionError(
                f"no recorded answer for {key}: the PromQL changed? "
                "re-record with scripts/record_prometheus.py"
            )
        return self.answers[key].popleft()

    def unused(self) -> int:
        return sum(len(q) for q in self.answers.values())


def load_prometheus_fixture(
    name: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(meta, exchanges, raw samples) recorded by scripts/record_prometheus.py."""
    d = PROMETHEUS_FIXTURES / name
    return (
        json.loads((d / "meta.json").read_text()),
        json.loads((d / "exchanges.json").read_text()),
        json.loads((d / "raw.json").read_text()),
    )


def collect_recorded(name: str) -> tuple[dict[str, Any], dict[str, Any], ReplaySession]:
    """raykit.metrics.collect over a recorded run, replayed: (meta, metrics block, session)."""
    from raykit import metrics

    meta, exchanges, _ = load_prometheus_fixture(name)
    session = ReplaySession(exchanges)
    clock = iter(meta["clock"])
    block = metrics.collect(
        meta["prom_url"],
        meta["node_ips"],
        meta["start"],
        meta["end"],
        scrape_interval=meta["scrape_interval"],
        settle=meta["settle"],
        session=session,  # type: ignore[arg-type]
        sleep=lambda _: None,
        now=lambda: next(clock),
    )
    return meta, block, session


@contextlib.contextmanager
def fresh_sandbox(name: str, hosts: int, **kwargs: Any) -> Iterator[Path]:
    """A test module's own sandbox: whatever a killed run left is removed first, the sandbox
    is brought up (its inventory yielded) and removed at the end, whatever happened."""
    from raykit import sandbox

    sandbox.down(name=name)
    try:
        yield sandbox.up(name=name, hosts=hosts, **kwargs)
    finally:
        sandbox.down(name=name)
