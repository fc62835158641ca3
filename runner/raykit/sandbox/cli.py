"""`raykit sandbox {up,inventory,down,status}`: the argument parsers and what each command runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import DEFAULT_NAME, DISTROS, SandboxError, console
from ._exec import _have
from .containers import _existing_by_index, _sandbox_containers
from .lifecycle import down, status, up
from .state import inventory_path, play_inventory, read_state, subset_inventory
from .validate import (
    resolve_cpus,
    resolve_distros,
    validate_cpus,
    validate_distros,
    validate_host_count,
    validate_name,
)

T = TypeVar("T")


def _checked(check: Callable[..., T], *args: Any) -> T:
    """``check(*args)`` for an argument type: its SandboxError becomes argparse's error."""
    try:
        return check(*args)
    except SandboxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _comma_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty item in {value!r}")
    return items


def _distro_list(value: str) -> list[str]:
    return _checked(validate_distros, _comma_list(value))


def _cpus_list(value: str) -> list[float]:
    try:
        items = [float(v) for v in _comma_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {value!r}") from None
    return _checked(validate_cpus, items)


def _host_count(option: str) -> Callable[[str], int]:
    """The argument type of ``option``, a number of hosts."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        return _checked(validate_host_count, number, option)

    return parse


def _sandbox_name(value: str) -> str:
    return _checked(validate_name, value)


def up_args(args: argparse.Namespace, current_hosts: int | None = None) -> dict[str, Any]:
    """Keyword arguments for up() from parsed CLI arguments; ValueError on inconsistent counts.

    Without --hosts, the number of hosts is the length of a --distro/--cpus list, else the
    sandbox's current number of hosts (``current_hosts``), else 3: a plain `up` never shrinks.
    """
    lengths = {len(v) for v in (args.distro, args.cpus) if v is not None and len(v) > 1}
    if args.hosts is None and len(lengths) > 1:
        raise ValueError(
            f"--distro has {len(args.distro)} values and --cpus {len(args.cpus)}: "
            "give one per host, the same number in both"
        )
    if args.hosts is not None:
        hosts: int = args.hosts
    elif lengths:
        hosts = lengths.pop()
    else:
        hosts = current_hosts or 3
    try:
        resolve_distros(args.distro, hosts)
        resolve_cpus(args.cpus, hosts)
    except SandboxError as exc:
        raise ValueError(str(exc)) from None
    return {
        "name": args.name,
        "hosts": hosts,
        "distros": args.distro,
        "cpus": args.cpus,
        "fresh": args.fresh,
    }


def _current_host_count(name: str) -> int | None:
    """How many hosts the sandbox is meant to have: the number the last `up` asked for (in
    state.json, written before anything is created, so a failed `up` still counts), else the
    containers it has (by label); None when it has neither."""
    state = read_state(name)
    if state and state.get("hosts"):
        return len(state["hosts"])
    if not _have("podman"):
        return None
    try:
        return len(_existing_by_index(_sandbox_containers(name), name)) or None
    except SandboxError:
        return None


def _guard(command: str, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except SandboxError as exc:
        console.print(f"[red]raykit sandbox {command}: error:[/] {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:
        console.print(f"[red]raykit sandbox {command}: interrupted[/]")
        return 130


def _cmd_up(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.sandbox_parser
    try:
        kwargs = up_args(args, _current_host_count(args.name))
    except ValueError as exc:
        parser.error(str(exc))

    def run() -> int:
        path = up(**kwargs)
        sys.stdout.write(f"{path}\n")
        sys.stdout.flush()
        return 0

    return _guard("up", run)


def _cmd_inventory(args: argparse.Namespace) -> int:
    def run() -> int:
        if args.play:
            path = play_inventory(args.name, Path(args.play))
        else:
            path = subset_inventory(args.name, args.nodes)
        sys.stdout.write(f"{path}\n")
        return 0

    return _guard("inventory", run)


def _cmd_down(args: argparse.Namespace) -> int:
    def run() -> int:
        down(name=args.name)
        return 0

    return _guard("down", run)


def _cmd_status(args: argparse.Namespace) -> int:
    def run() -> int:
        hosts = status(args.name)
        out = Console(highlight=False)
        if not hosts:
            out.print(f"sandbox {args.name}: no containers")
            return 1
        table = Table(title=f"sandbox {args.name}")
        for column in ("container", "distro", "IP", "state", "ssh ok"):
            table.add_column(column)
        for h in hosts:
            table.add_row(
                h.container, h.distro, h.ip, h.state, "[green]yes[/]" if h.ssh else "[red]no[/]"
            )
        out.print(table)
        if inventory_path(args.name).is_file():
            out.print(f"inventory: {inventory_path(args.name)}")
        return 0 if all(h.ssh for h in hosts) else 1

    return _guard("status", run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `raykit sandbox {up,down,status}`; each sub-command sets ``func(args) -> int``."""
    sandbox = subparsers.add_parser(
        "sandbox",
        help="throw-away local test hosts (podman containers with systemd and sshd)",
        description=(
            "Throw-away local test hosts: podman containers running systemd and sshd, each with "
            "its own hostname and IP, reached over SSH as a sudoer. `up` prints the path of "
            "their Ansible inventory as its last line."
        ),
    )
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True)

    def add(cmd: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> Any:
        parser = commands.add_parser(cmd, help=help_text, description=help_text)
        parser.add_argument(
            "--name",
            type=_sandbox_name,
            default=DEFAULT_NAME,
            help=f"sandbox name: network, container prefix, state dir (default: {DEFAULT_NAME})",
        )
        parser.set_defaults(func=func, sandbox_parser=parser)
        return parser

    up_parser = add("up", "create or update the sandbox; print its inventory path", _cmd_up)
    up_parser.add_argument(
        "--hosts",
        type=_host_count("--hosts"),
        default=None,
        help="number of hosts (default: the length of --distro/--cpus lists, else the sandbox's "
        "current number, else 3)",
    )
    up_parser.add_argument(
        "--distro",
        type=_distro_list,
        default=None,
        metavar="D[,D...]",
        help=f"{' or '.join(DISTROS)}: one for all hosts or one per host (default: the last host "
        "trixie, the others bookworm; existing hosts keep theirs)",
    )
    up_parser.add_argument(
        "--cpus",
        type=_cpus_list,
        default=None,
        metavar="C[,C...]",
        help="CPU limit in cores: one for all hosts or one per host, 0 = no limit (default: "
        "none); a limited host announces 4 Ray CPUs per core of it (ray_node_num_cpus)",
    )
    up_parser.add_argument(
        "--fresh", action="store_true", help="remove the whole sandbox first, then create it"
    )
    inv_parser = add(
        "inventory",
        "write an inventory of the first N hosts (same hosts, smaller cluster), or one that "
        "lets the sandbox play the hosts of your inventory; print its path",
        _cmd_inventory,
    )
    which = inv_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--nodes", type=_host_count("--nodes"), help="N")
    which.add_argument(
        "--play",
        metavar="INVENTORY",
        help="the sandbox's hosts play INVENTORY's (use: ansible-playbook site.yml -i INVENTORY "
        "-i PRINTED_PATH)",
    )
    add("down", "remove the sandbox's containers, network and state", _cmd_down)
    add("status", "show the sandbox's hosts: state, IP, SSH reachability", _cmd_status)
