"""Run a user's Ray script unmodified, timed, between the protocol lines.

    python -m workloads.script PATH [ARGS...]

Prints RAYKIT_MANIFEST, runs PATH as `python PATH ARGS...` would (run as "__main__", with
sys.argv = [PATH, *ARGS] and PATH's directory first on sys.path), then prints
`RAYKIT_RESULT {"wall_s": ..., "exit_code": ...}` and exits with the script's exit code.
This wrapper does not connect to Ray: the script does, e.g. with ray.init(address="auto"),
which inside a Ray job finds the job's cluster.
"""

from __future__ import annotations

import runpy
import sys
import time
import traceback
from pathlib import Path

from workloads import _common


def exit_code(exc: SystemExit) -> int:
    """The status `sys.exit(arg)` gives the shell: None is 0, an int itself, else 1 (and the
    argument is printed to stderr, as Python does)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr, flush=True)
    return 1


def run_script(path: str, args: list[str]) -> tuple[float, int]:
    """Run the script; (wall seconds, exit code). Its exceptions are printed, not raised."""
    script_dir = str(Path(path).resolve().parent)
    sys.argv = [path, *args]
    sys.path.insert(0, script_dir)
    start = time.perf_counter()
    try:
        runpy.run_path(path, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    wall = time.perf_counter() - start
    sys.stdout.flush()
    sys.stderr.flush()
    return wall, code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv else 2
    path, args = argv[0], argv[1:]
    if not Path(path).is_file():
        print(f"python -m workloads.script: no such file: {path}", file=sys.stderr)
        return 2
    _common.emit("MANIFEST", _common.manifest())
    wall, code = run_script(path, args)
    # driver_ended (with the manifest's driver_started): the driver's own time, for the runner.
    _common.emit("RESULT", {"wall_s": wall, "exit_code": code, "driver_ended": time.time()})
    return code


if __name__ == "__main__":
    sys.exit(main())
