"""roles/ray_venv/files/team_lock.py: the team's requirements compiled with the kit's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support import load_by_path

FILES = Path(__file__).resolve().parents[2] / "roles" / "ray_venv" / "files"
SCRIPT = FILES / "team_lock.py"
sys.path.insert(0, str(FILES))  # team_lock imports lock_for_target from beside it
tl = load_by_path(SCRIPT, "raykit_team_lock")


def test_constraints_keep_every_pin_and_marker_and_drop_the_hashes() -> None:
    lock = (FILES / "requirements.lock").read_text()
    lines = tl.constraints(lock).splitlines()
    assert "ray==2.60.0" in lines
    assert "numpy==2.2.6 ; python_full_version < '3.11'" in lines
    assert "numpy==2.5.5 ; python_full_version >= '3.12'" in lines
    assert not any("--hash" in ln or ln.startswith("#") for ln in lines)
    assert len(lines) == len(re.findall(r"(?m)^[A-Za-z0-9]", lock))  # one per locked entry


def test_the_stamp_covers_every_input(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    for p in (a, b, c):
        p.write_text("x\n")
    first = tl.stamp(a, b, c)
    c.write_text("y\n")
    assert tl.stamp(a, b, c) != first
    assert tl.stamp(a, b, c) != tl.stamp(b, a, c) or a.read_text() == b.read_text()


def run(uv: str, team_in: Path, team_lock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), uv, str(FILES / "requirements.in"),
         str(FILES / "requirements.lock"), str(team_in), str(team_lock)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_lock_of_the_same_inputs_is_kept_and_nothing_is_resolved(tmp_path: Path) -> None:
    team_in, team_lock = tmp_path / "requirements.in", tmp_path / "requirements.lock"
    team_in.write_text("tabulate==0.9.0\n")
    head = tl.STAMP + tl.stamp(FILES / "requirements.in", FILES / "requirements.lock", team_in)
    team_lock.write_text(f"{head}\nkept as it is\n")
    proc = run("/nonexistent/uv", team_in, team_lock)  # uv would fail: it is not called
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"lock": str(team_lock), "compiled": False, "error": None}
    assert team_lock.read_text() == f"{head}\nkept as it is\n"


def test_a_changed_file_is_compiled_again_and_uv_failing_is_said(tmp_path: Path) -> None:
    team_in, team_lock = tmp_path / "requirements.in", tmp_path / "requirements.lock"
    team_in.write_text("tabulate==0.9.1\n")
    team_lock.write_text(tl.STAMP + "0" * 64 + "\nstale\n")
    fake_uv = tmp_path / "uv"
    fake_uv.write_text("#!/bin/sh\necho 'error: No solution found' >&2\nexit 1\n")
    fake_uv.chmod(0o755)
    proc = run(str(fake_uv), team_in, team_lock)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"] == "error: No solution found"
    assert team_lock.read_text().endswith("stale\n")  # a failed compile leaves the old lock
