"""The raykit command line: up, down, status, smoke, sandbox."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from raykit import __version__

err = Console(stderr=True)


def _inventory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i", "--inventory", required=True, help="Ansible inventory (file or directory)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="stream Ansible's own output")
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra variable for the playbooks (repeatable)",
    )


def _extravars(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"raykit: -e takes KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _run(playbook: str, args: argparse.Namespace, extra: dict[str, object] | None = None) -> int:
    from raykit.playbooks import print_summary, run_playbook

    # The command's own options first; the user's explicit -e wins, as with ansible-playbook.
    extravars: dict[str, object] = {**(extra or {}), **_extravars(args.extra_vars)}
    outcome = run_playbook(
        playbook, args.inventory, extravars=extravars, verbose=args.verbose, console=err
    )
    print_summary(outcome, err)
    return 0 if outcome.ok else 1


def cmd_up(args: argparse.Namespace) -> int:
    return _run("site.yml", args)


def cmd_down(args: argparse.Namespace) -> int:
    return _run("playbooks/teardown.yml", args, {"raykit_purge": bool(args.purge)})


def cmd_status(args: argparse.Namespace) -> int:
    return _run("playbooks/status.yml", args)


def cmd_smoke(args: argparse.Namespace) -> int:
    return _run("playbooks/smoke.yml", args, {"smoke_tasks": args.tasks})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raykit", description="Version-matched Ray clusters on your own hosts."
    )
    parser.add_argument("--version", action="version", version=f"raykit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="deploy: preflight, artifacts, runtime, cluster (site.yml)")
    _inventory(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop and disable Ray on every host")
    _inventory(p)
    p.add_argument(
        "--purge",
        action="store_true",
        help="also remove /opt/raykit, /etc/raykit, Ray's data and the raykit user",
    )
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="versions, unit state and address per host; alive nodes")
    _inventory(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("smoke", help="the seed's smoke test: tasks report the node they ran on")
    _inventory(p)
    p.add_argument("--tasks", type=int, default=5)
    p.set_defaults(func=cmd_smoke)

    from raykit import sandbox

    sandbox.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        err.print("raykit: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
