"""Read-only facts preflight needs, in one round trip; printed as JSON.

usage: probe.py PREFIX [HEAD_ADDRESS [UNIT]]
  glibc      the C library version (None when not glibc)
  nproc      online CPUs
  free_kb    free space on the filesystem that will hold PREFIX (nearest existing parent)
  mount      that parent
  route_src  this host's source address on the route to HEAD_ADDRESS (None without a route)
  route_err  why there is no route
  nft        {"path": ..., "usable": bool, "error": ...}: whether `nft list tables` works here
  current    the venv PREFIX/current points at (None when there is none)
  running    whether UNIT is active (None without systemd or without UNIT)
Standard library only; changes nothing.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

prefix = sys.argv[1]
head = sys.argv[2] if len(sys.argv) > 2 else ""
unit = sys.argv[3] if len(sys.argv) > 3 else ""
out = {}
try:
    out["glibc"] = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
except (ValueError, OSError, IndexError, AttributeError):
    out["glibc"] = None
out["nproc"] = os.cpu_count()
parent = Path(prefix)
while not parent.exists():
    parent = parent.parent
out["mount"] = str(parent)
out["free_kb"] = shutil.disk_usage(parent).free // 1024
out["route_src"] = out["route_err"] = None
if head:
    proc = subprocess.run(
        ["ip", "-4", "-o", "route", "get", head], capture_output=True, text=True, check=False
    )
    words = proc.stdout.split()
    if proc.returncode == 0 and "src" in words:
        out["route_src"] = words[words.index("src") + 1]
    else:
        out["route_err"] = (proc.stderr or proc.stdout).strip()

nft = shutil.which("nft") or next(
    (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None
)
out["nft"] = {"path": nft, "usable": False, "error": "nft is not installed"}
if nft:
    proc = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, check=False)
    out["nft"]["usable"] = proc.returncode == 0
    out["nft"]["error"] = None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()
current = Path(prefix, "current")
out["current"] = os.path.realpath(current) if current.is_symlink() else None
out["running"] = None
systemctl = shutil.which("systemctl")
if unit and systemctl and Path("/run/systemd/system").is_dir():
    proc = subprocess.run(
        [systemctl, "is-active", "--quiet", unit], capture_output=True, check=False
    )
    out["running"] = proc.returncode == 0
print(json.dumps(out))
