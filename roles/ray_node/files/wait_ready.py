"""Wait until a systemd-supervised Ray node answers, or say at once why it will not.

usage: wait_ready.py UNIT TIMEOUT HOST:PORT [HOST:PORT ...]

Polls the ports (the head's GCS and dashboard, a worker's raylet) and the unit. Ready when every
port accepts a connection: prints {"ready": true, "seconds": ...}, exit 0. As soon as the unit
has failed, or systemd restarted it (Ray exited: a port in use, a bad flag, a head it cannot
reach), or when TIMEOUT seconds pass: prints {"ready": false, "reason": ..., "journal": [...]}
with the unit's last journal lines, which hold Ray's own words, and exits 1.
Standard library only; changes nothing.
"""

import json
import re
import socket
import subprocess
import sys
import time


def unit_state(unit):
    proc = subprocess.run(
        ["systemctl", "show", unit, "--property=ActiveState,SubState,NRestarts,ExecMainStatus"],
        capture_output=True,
        text=True,
        check=False,
    )
    state = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        state["NRestarts"] = int(state.get("NRestarts") or 0)
    except ValueError:
        state["NRestarts"] = 0
    return state


def answers(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def readable(lines):
    """Journal lines without terminal colours, and a traceback without its frames: Ray's own
    messages and the exception's last line are what tell the reason."""
    out, skip_code = [], False
    for raw in lines:
        line = ANSI.sub("", raw).rstrip()
        if skip_code:
            skip_code = False
            if line.startswith("    "):
                continue
        if re.match(r"\s+File \"", line):
            skip_code = True
            continue
        if not line.strip() or set(line.strip()) <= set("~^"):
            continue
        out.append(line)
    return out


def journal(unit, since):
    proc = subprocess.run(
        ["journalctl", "-u", unit, "--since", since, "-n", "200", "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
        check=False,
    )
    return readable(proc.stdout.splitlines())[-25:]


def main(argv):
    unit, timeout, targets = argv[1], float(argv[2]), [t.rsplit(":", 1) for t in argv[3:]]
    start = time.monotonic()
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 2))
    first = unit_state(unit)
    reason = ""
    while True:
        if all(answers(h, p) for h, p in targets):
            print(json.dumps({"ready": True, "seconds": round(time.monotonic() - start, 1)}))
            return 0
        state = unit_state(unit)
        if state.get("ActiveState") == "failed":
            reason = f"{unit} failed (exit status {state.get('ExecMainStatus')})"
        elif state["NRestarts"] > first["NRestarts"]:
            reason = (
                f"Ray exited (status {state.get('ExecMainStatus')}) and systemd restarted "
                f"{unit}: it will not come up as configured"
            )
        elif time.monotonic() - start > timeout:
            waiting = ", ".join(f"{h}:{p}" for h, p in targets if not answers(h, p))
            reason = (
                f"{waiting} did not answer within {timeout:.0f} s "
                f"({unit} is {state.get('SubState')})"
            )
        if reason:
            break
        time.sleep(0.5)
    print(json.dumps({"ready": False, "reason": reason, "journal": journal(unit, since)}))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
