"""Print, as JSON, what this host would run: interpreter version, Ray version, lock hash.

Run with the interpreter under test (or the venv's python). Reads the venv marker written by
raykit after a complete install; measures the rest. Standard library only.
"""

import importlib.metadata
import json
import pathlib
import platform
import sys

report = {"python": platform.python_version(), "executable": sys.executable}
try:
    report["ray"] = importlib.metadata.version("ray")
except importlib.metadata.PackageNotFoundError:
    report["ray"] = None
marker = pathlib.Path(sys.prefix, ".raykit-venv.json")
try:
    report["lock"] = json.loads(marker.read_text())["lock_sha256"]
except (OSError, ValueError, KeyError):
    report["lock"] = None
print(json.dumps(report))
