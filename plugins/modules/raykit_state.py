#!/usr/bin/python
"""raykit_state: how far this host is from what a role would make of it, read in one round trip.

Called by the ``raykit_probe`` action (plugins/action/raykit_probe.py), which works out on the
control node what every managed file should hold and sends only its sha1 here. This module
changes nothing: it reads each path (type, sha1, owner, group, mode, link target), each
systemd unit's state, each user, and runs each read-only check command, then returns one line
per difference. An empty ``diffs`` means the role's tasks would change nothing.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: raykit_state
short_description: Read files, units, users and checks at once and list what differs
description:
  - Internal to raykit; see the raykit_probe action plugin.
options:
  files:
    description: Paths with the state they should have (state file, directory, link, absent).
    type: list
    elements: dict
    default: []
  units:
    description: systemd units with active and enabled as wanted, or masked (and stopped).
    type: list
    elements: dict
    default: []
  users:
    description: Users that must exist.
    type: list
    elements: str
    default: []
  checks:
    description: Read-only commands (argv) that must exit 0.
    type: list
    elements: dict
    default: []
"""


SHOW_PROPS = "Id,LoadState,ActiveState,UnitFileState,NeedDaemonReload"


def _sha1(path: str) -> str:
    digest = hashlib.sha1()  # noqa: S324 -- a checksum, as Ansible's copy/template use
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _name(getter, ident: int) -> str:
    try:
        return getter(ident)[0]
    except KeyError:
        return str(ident)


def file_diffs(want: dict) -> list[str]:
    """What differs between the path and ``want`` (state, sha1, target, owner, group, mode)."""
    path = want["path"]
    state = want.get("state", "file")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return [] if state == "absent" else [f"{path}: missing"]
    if state == "absent":
        return [f"{path}: present, should be absent"]
    kinds = {"file": stat.S_ISREG, "directory": stat.S_ISDIR, "link": stat.S_ISLNK}
    if not kinds[state](st.st_mode):
        return [f"{path}: not a {state}"]
    out: list[str] = []
    if state == "file" and want.get("sha1") and _sha1(path) != want["sha1"]:
        out.append(f"{path}: content differs")
    if state == "link":
        target = str(Path(path).readlink())
        if want.get("target") and target != want["target"]:
            out.append(f"{path}: points at {target}, should point at {want['target']}")
        return out
    if want.get("owner") and _name(pwd.getpwuid, st.st_uid) != want["owner"]:
        out.append(f"{path}: owner {_name(pwd.getpwuid, st.st_uid)}, should be {want['owner']}")
    if want.get("group") and _name(grp.getgrgid, st.st_gid) != want["group"]:
        out.append(f"{path}: group {_name(grp.getgrgid, st.st_gid)}, should be {want['group']}")
    if want.get("mode") and stat.S_IMODE(st.st_mode) != int(str(want["mode"]), 8):
        out.append(f"{path}: mode {stat.S_IMODE(st.st_mode):04o}, should be {want['mode']}")
    return out


def parse_show(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show -p Id,...`` output for several units, by unit name."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


def unit_diffs(wants: list[dict], shown: dict[str, dict[str, str]]) -> list[str]:
    out: list[str] = []
    for want in wants:
        name = want["name"] if "." in want["name"] else want["name"] + ".service"
        props = shown.get(name, {})
        if want.get("masked"):
            if props.get("UnitFileState") != "masked" or props.get("ActiveState") == "active":
                out.append(
                    f"{name}: {props.get('UnitFileState')} and {props.get('ActiveState')},"
                    " should be masked and stopped"
                )
            continue
        if props.get("LoadState") != "loaded":
            out.append(f"{name}: not loaded ({props.get('LoadState', 'unknown')})")
            continue
        if props.get("NeedDaemonReload") == "yes":
            out.append(f"{name}: its file changed since systemd read it")
        if want.get("active", True) and props.get("ActiveState") != "active":
            out.append(f"{name}: {props.get('ActiveState')}, should be active")
        if want.get("enabled", True) and props.get("UnitFileState") != "enabled":
            out.append(f"{name}: {props.get('UnitFileState')}, should be enabled")
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "default": []},
            "units": {"type": "list", "elements": "dict", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "checks": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    diffs: list[str] = []
    for want in module.params["files"]:
        diffs.extend(file_diffs(want))
    for user in module.params["users"]:
        try:
            pwd.getpwnam(user)
        except KeyError:
            diffs.append(f"user {user}: missing")
    units = module.params["units"]
    if units:
        names = [u["name"] for u in units]
        rc, out, err = module.run_command(["systemctl", "show", "-p", SHOW_PROPS, "--", *names])
        if rc != 0:
            diffs.append(f"systemctl show {' '.join(names)}: {err.strip() or rc}")
        else:
            diffs.extend(unit_diffs(units, parse_show(out)))
    for check in module.params["checks"]:
        argv = [str(arg) for arg in check["argv"]]  # a templated number arrives as an int
        rc, out, err = module.run_command(argv)
        if rc != 0:
            diffs.append(f"{check.get('name') or ' '.join(argv)}: failed (rc {rc})")
        elif "stdout" in check and out.strip() != str(check["stdout"]):
            diffs.append(
                f"{check.get('name') or ' '.join(argv)}: printed {out.strip()[:80]!r}, "
                f"should print {check['stdout']!r}"
            )
    module.exit_json(changed=False, diffs=diffs)


if __name__ == "__main__":
    main()
