"""Compile a team's requirements with the kit's into one hashed lock, on the control node.

    python team_lock.py UV KIT_IN KIT_LOCK TEAM_IN TEAM_LOCK

TEAM_LOCK is `uv pip compile KIT_IN TEAM_IN` (universal, hashes, CPython >= 3.10) with every
package of KIT_LOCK as a constraint: Ray and what it needs keep the kit's versions, the team's
packages come on top, and a team pin that contradicts the kit's is uv's "no solution" error.
Its first line records the sha256 of the three inputs; while they are unchanged the lock is
left as it is (and nothing is resolved). Prints one JSON object: {"lock", "compiled", "error"};
exit 1 when uv could not compile it (its own words in "error").
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from lock_for_target import entries

STAMP = "# raykit team lock, inputs sha256 "


def stamp(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def constraints(kit_lock: str) -> str:
    """The kit lock's requirements, markers kept and hashes dropped: uv's constraints."""
    return "\n".join(e.split(" --hash=")[0].strip() for e in entries(kit_lock)) + "\n"


def main() -> int:
    uv, kit_in, kit_lock, team_in, team_lock = (Path(a) for a in sys.argv[1:6])
    want = STAMP + stamp(kit_in, kit_lock, team_in)
    out = {"lock": str(team_lock), "compiled": False, "error": None}
    if team_lock.exists() and team_lock.read_text(encoding="utf-8").split("\n", 1)[0] == want:
        print(json.dumps(out))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cons = Path(tmp) / "kit-constraints.txt"
        cons.write_text(constraints(kit_lock.read_text(encoding="utf-8")), encoding="utf-8")
        result = Path(tmp) / "requirements.lock"
        proc = subprocess.run(
            [str(uv), "pip", "compile", "--quiet", "--no-config", "--universal",
             "--generate-hashes", "--no-annotate", "--python-version", "3.10", "--no-header",
             "--constraint", str(cons), "-o", str(result), str(kit_in), str(team_in)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            out["error"] = (proc.stderr or proc.stdout).strip()
            print(json.dumps(out))
            return 1
        body = result.read_text(encoding="utf-8")
    header = (
        f"{want}\n"
        f"# Compiled by raykit from {team_in.name} and the kit's requirements, the kit's lock\n"
        "# as constraints. Do not edit: edit the .in file; the next `raykit up` compiles again.\n"
    )
    team_lock.write_text(header + body, encoding="utf-8")
    out["compiled"] = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
