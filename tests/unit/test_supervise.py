"""roles/ray_node/files/supervise.py: nothing outlives the command, its status is kept, signals
reach it. Real processes (no Ray): the command leaves an orphan that ignores SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import REPO, load_by_path

SUPERVISE = REPO / "roles/ray_node/files/supervise.py"
supervise = load_by_path(SUPERVISE, "supervise")

# A daemon that ignores SIGTERM, orphaned at once (its parent shell exits): what a Ray worker
# busy in C code looks like after its raylet died.
ORPHAN = "(trap '' TERM; exec sleep 300) & echo $! >{pidfile}; sleep 0.3; exit {code}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone (nobody is left to reap it here but init).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def run(*command: str, grace: float = 0.5, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SUPERVISE), "--grace", str(grace), "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("code", [0, 1, 3])
def test_the_commands_status_is_kept_and_its_orphan_is_killed(tmp_path: Path, code: int) -> None:
    pidfile = tmp_path / "orphan.pid"
    proc = run("sh", "-c", ORPHAN.format(pidfile=pidfile, code=code))
    assert proc.returncode == code
    orphan = int(pidfile.read_text())
    assert not alive(orphan)
    assert f"1 process(es) outlived the command by 0.5 s and were killed: {orphan}" in proc.stderr


def test_a_clean_command_says_nothing() -> None:
    proc = run("true")
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_signal_death_is_reported_as_a_shell_would() -> None:
    assert run("sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL


def test_sigterm_is_handed_to_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SUPERVISE),
            "--",
            "sh",
            "-c",
            f"trap 'echo term >{marker}; exit 1' TERM; while :; do sleep 0.1; done",
        ],
    )
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 1
    assert marker.read_text().strip() == "term"
    assert time.monotonic() - started < 5


def test_parent_of_reads_names_with_spaces_and_parentheses() -> None:
    assert supervise.parent_of("123 (ray::A (b) c) S 77 123 123 0 -1") == 77


def test_no_command_is_an_error() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "no command given" in proc.stderr
