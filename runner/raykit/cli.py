"""The raykit command line: the lifecycle (up, down, upgrade, rollback, remove-node), status,
smoke, bench, run, compare and sandbox."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from raykit import __version__

if TYPE_CHECKING:
    from raykit.model import Report

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


def _run(
    playbook: str,
    args: argparse.Namespace,
    extra: dict[str, object] | None = None,
    limit: str | None = None,
) -> int:
    from raykit.playbooks import print_summary, run_playbook

    # The command's own options first; the user's explicit -e wins, as with ansible-playbook.
    extravars: dict[str, object] = {**(extra or {}), **_extravars(args.extra_vars)}
    outcome = run_playbook(
        playbook,
        args.inventory,
        extravars=extravars,
        verbose=args.verbose,
        limit=limit,
        console=err,
    )
    print_summary(outcome, err)
    if getattr(args, "timings", None):
        import json

        from raykit.playbooks import timings

        Path(args.timings).write_text(json.dumps(timings(outcome), indent=2) + "\n")
    return 0 if outcome.ok else 1


def cmd_up(args: argparse.Namespace) -> int:
    return _run("site.yml", args)


def cmd_down(args: argparse.Namespace) -> int:
    return _run("playbooks/teardown.yml", args, {"raykit_purge": bool(args.purge)})


def cmd_upgrade(args: argparse.Namespace) -> int:
    return _run("playbooks/upgrade.yml", args, {"raykit_switching": True})


def cmd_rollback(args: argparse.Namespace) -> int:
    return _run("playbooks/rollback.yml", args, {"raykit_switching": True})


def cmd_remove_node(args: argparse.Namespace) -> int:
    hosts = list(dict.fromkeys(args.hosts))
    extra: dict[str, object] = {"raykit_remove_nodes": hosts, "raykit_purge": bool(args.purge)}
    if args.drain_timeout is not None:
        extra["ray_node_drain_timeout"] = args.drain_timeout
    rc = _run("playbooks/remove-node.yml", args, extra)
    if rc != 0:
        return rc
    # The rest of the cluster without them: Prometheus' targets, the firewall's peers,
    # cluster.json, and the check that every remaining node is alive.
    err.print(f"raykit: converging the cluster without {', '.join(hosts)}")
    rc = _run("site.yml", args, {"raykit_remove_nodes": hosts}, limit="all:!" + ":!".join(hosts))
    if rc == 0:
        err.print(
            f"raykit: removed {', '.join(hosts)}. Take them out of {args.inventory} now: "
            "the next `raykit up` with the inventory as it is would add them back."
        )
    return rc


def cmd_status(args: argparse.Namespace) -> int:
    if args.deep:
        return _run("playbooks/status.yml", args)
    import json

    from raykit import status
    from raykit.cluster import ClusterError, load

    started = time.monotonic()
    out = Console()
    if not out.is_terminal:  # a pipe or a file: one line per node, not a squeezed table
        out = Console(width=200)
    try:
        cluster = load(args.inventory)
    except ClusterError as exc:
        doc = status.unreachable("?", str(exc))
        print(json.dumps(doc)) if args.json else err.print(f"[red]raykit status:[/red] {exc}")
        return 2

    def once() -> dict:
        nonlocal started
        started = started or time.monotonic()
        doc = status.collect(cluster, tunnel=args.tunnel, reports=Path(args.reports))
        # The first answer's time includes reading the inventory.
        doc["seconds"] = round(time.monotonic() - started, 2)
        started = 0.0
        return doc

    if not args.watch:
        doc = once()
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            status.render(out, doc)
        return int(doc["code"])
    import io

    from rich.live import Live
    from rich.text import Text

    code = 2
    with Live(console=out, auto_refresh=False) as live, contextlib.suppress(KeyboardInterrupt):
        while True:  # until Ctrl-C; the exit status is the last refresh's
            doc = once()
            code = int(doc["code"])
            buf = io.StringIO()
            status.render(Console(file=buf, force_terminal=True, width=out.width), doc)
            live.update(Text.from_ansi(buf.getvalue()), refresh=True)
            time.sleep(args.watch)
    return code


def cmd_smoke(args: argparse.Namespace) -> int:
    return _run("playbooks/smoke.yml", args, {"smoke_tasks": args.tasks})


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return n


def _measured(args: argparse.Namespace, job_factory: object) -> int:
    """Shared by bench and run: load the cluster, run the job, write and announce the report."""
    from raykit.bench import bench
    from raykit.cluster import ClusterError, load
    from raykit.jobs import JobError

    try:
        job = job_factory()  # type: ignore[operator]
        _writable(Path(args.reports))
        cluster = load(args.inventory)
        doc, paths = bench(
            cluster,
            job,
            repeat=args.repeat,
            reports_dir=Path(args.reports),
            console=err,
            tunnel=args.tunnel,
        )
    except (ClusterError, JobError) as exc:
        err.print(f"[red]raykit:[/red] {exc}", highlight=False)
        return 2
    _print_report(doc, paths)
    return 0 if doc.succeeded else 1


def _writable(reports: Path) -> None:
    """ClusterError unless reports can be written under `reports` (made if missing)."""
    import tempfile

    from raykit.cluster import ClusterError

    try:
        reports.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=reports):
            pass
    except OSError as exc:
        raise ClusterError(
            f"--reports {reports}: cannot write reports there ({exc.strerror or exc}). "
            "Fix: give a directory you can write to."
        ) from None


def _print_report(doc: Report, paths: dict[str, Path]) -> None:
    from rich.text import Text

    from raykit import compare

    # What the report says is printed as text, never read as rich markup: a cause such as
    # "... [repeated 3x across cluster]" or "[/tmp/x]" stays as it is.
    compare.render_terminal(err, [doc])
    for note in doc.notes:
        err.print(Text(f"note: {note}"))
    missing = {
        m: r for run in doc.runs if run.metrics is not None for m, r in run.metrics.missing.items()
    }
    for metric, reason in sorted(missing.items()):
        err.print(Text.assemble(("missing", "yellow"), f" {metric}: {reason}"))
    if not doc.succeeded:
        err.print(Text.assemble(("FAILED", "red"), f": {doc.error}"))
    err.print(f"report: {paths['json'].parent}", highlight=False)
    # The report's directory on stdout, alone: scripts can capture it.
    print(paths["json"].parent)


def cmd_bench(args: argparse.Namespace) -> int:
    from raykit.bench import workload_job, workloads_common

    if args.list:
        common = workloads_common()
        for name in sorted(common.WORKLOADS):
            doc = (common.WORKLOADS[name].__doc__ or "").strip().splitlines()
            print(f"{name:18} {doc[0] if doc else ''}")
        return 0
    if not args.inventory or not args.workload:
        err.print("[red]raykit bench:[/red] -i INVENTORY and --workload NAME are required")
        return 2
    return _measured(args, lambda: workload_job(args.workload, args.set))


def cmd_run(args: argparse.Namespace) -> int:
    from raykit.bench import script_job

    return _measured(args, lambda: script_job(args.script, args.args, args.working_dir))


def cmd_compare(args: argparse.Namespace) -> int:
    from raykit import compare, report

    try:
        docs = [report.load(Path(p)) for p in args.reports]
    except (OSError, ValueError) as exc:
        err.print(f"[red]raykit compare:[/red] {exc}", highlight=False)
        return 2
    # Output files whose directory is missing stop here, before anything is printed or written.
    for kind, dest in (("--markdown", args.markdown), ("--html", args.html)):
        if dest and not Path(dest).expanduser().parent.is_dir():
            err.print(
                f"[red]raykit compare:[/red] {kind} {dest}: the directory "
                f"{Path(dest).expanduser().parent} does not exist. Fix: create it, or name a "
                "file in an existing directory.",
                highlight=False,
            )
            return 2
    compare.render_terminal(Console(), docs)
    outputs = []
    if args.markdown:
        outputs.append(("markdown", args.markdown, compare.render_markdown(docs)))
    if args.html:
        outputs.append(
            ("html", args.html, compare.render_html(docs, [str(p) for p in args.reports]))
        )
    for kind, dest, text in outputs:
        try:
            Path(dest).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            err.print(
                f"[red]raykit compare:[/red] cannot write {dest}: {exc.strerror}. Fix: name a "
                "file you can write.",
                highlight=False,
            )
            return 2
        err.print(f"{kind}: {dest}", highlight=False)
    return 0


def _measured_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repeat", type=_positive, default=1, metavar="N", help="runs, one report (default 1)"
    )
    p.add_argument(
        "--reports",
        default="reports",
        metavar="DIR",
        help="where reports are written (default: ./reports)",
    )
    p.add_argument(
        "--tunnel",
        choices=("auto", "always", "never"),
        default="auto",
        help="reach the dashboard and Prometheus through SSH (auto: when not reachable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raykit", description="Version-matched Ray clusters on your own hosts."
    )
    parser.add_argument("--version", action="version", version=f"raykit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="deploy: preflight, artifacts, runtime, cluster (site.yml)")
    _inventory(p)
    p.add_argument(
        "--timings",
        metavar="FILE",
        help="write where the time went (per play, slowest tasks) as JSON",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop and disable Ray on every host")
    _inventory(p)
    p.add_argument(
        "--purge",
        action="store_true",
        help="also remove /opt/raykit, /etc/raykit, Ray's data and the raykit user",
    )
    p.set_defaults(func=cmd_down)

    p = sub.add_parser(
        "upgrade",
        help="move the running cluster to new pins, all nodes at once; back on any failure",
        description=(
            "While the cluster keeps running: preflight, the new artifacts, the new interpreter "
            "and venv beside the old ones on every host, and the version gate on them. Then "
            "stop the workers and the head, switch every host to the new venv, start the head "
            "and the workers, and check that every node is alive and runs a task on the new "
            "versions. On any failure after the stop every host goes back to the venv it ran, "
            "and the command fails naming the host and the step. Prints the downtime; the old "
            "venv stays as /opt/raykit/previous for `raykit rollback`."
        ),
    )
    _inventory(p)
    p.set_defaults(func=cmd_upgrade)

    p = sub.add_parser(
        "rollback",
        help="back to the venv every host ran before its last upgrade, all nodes at once",
        description=(
            "The same switch as `raykit upgrade`, to the venv each host kept as "
            "/opt/raykit/previous (refused when a host has none, or when they differ). "
            "Afterwards the inventory's pins still name the newer venv: set them to what runs, "
            "or `raykit upgrade` again."
        ),
    )
    _inventory(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "remove-node",
        help="drain workers, stop them, and converge the rest of the cluster without them",
        description=(
            "Drain each worker (Ray places nothing new there; running tasks get "
            "--drain-timeout seconds), stop and disable its unit (--purge: also remove what "
            "raykit installed there), then converge the other nodes without it: Prometheus' "
            "targets, the firewall's peers and cluster.json stop naming it. A worker that does "
            "not answer is removed from the cluster's records and named. Then take it out of "
            "the inventory: the next `raykit up` has nothing to change."
        ),
    )
    _inventory(p)
    p.add_argument("hosts", nargs="+", metavar="HOST", help="inventory name of a worker")
    p.add_argument(
        "--purge",
        action="store_true",
        help="also remove /opt/raykit, /etc/raykit, Ray's data and the raykit user there",
    )
    p.add_argument(
        "--drain-timeout",
        type=int,
        metavar="S",
        help="seconds the running tasks get to end (default: ray_node_drain_timeout, 60)",
    )
    p.set_defaults(func=cmd_remove_node)

    p = sub.add_parser(
        "status",
        help="the cluster's health from Ray and Prometheus in seconds (--deep: per-host probe)",
        description=(
            "Per node: alive, versions, CPU, memory, object store, spilling, disk, scrape "
            "targets; Prometheus and Grafana health; a verdict. Exit 0 healthy, 1 degraded, "
            "2 unreachable or bad input."
        ),
    )
    _inventory(p)
    p.add_argument(
        "--deep",
        action="store_true",
        help="also probe every host over SSH (units, versions on disk): the status playbook",
    )
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.add_argument("--watch", type=_positive, metavar="N", help="refresh every N seconds, in place")
    p.add_argument(
        "--tunnel",
        choices=("auto", "always", "never"),
        default="auto",
        help="reach the dashboard and Prometheus through SSH (auto: when not reachable)",
    )
    p.add_argument(
        "--reports", default="reports", metavar="DIR", help="where to look for the last report"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("smoke", help="the seed's smoke test: tasks report the node they ran on")
    _inventory(p)
    p.add_argument("--tasks", type=int, default=5)
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("bench", help="run a seed workload as a Ray job, measure it, save a report")
    p.add_argument("-i", "--inventory", help="Ansible inventory of the deployed cluster")
    p.add_argument("--workload", metavar="NAME", help="see --list")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="workload parameter, e.g. --set preset=small --set task_num=10000 (repeatable)",
    )
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    _measured_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("run", help="run your script as a Ray job, measure it, save a report")
    p.add_argument("-i", "--inventory", required=True, help="Ansible inventory of the cluster")
    p.add_argument(
        "--working-dir",
        help="upload this directory (holding the script) instead of the script alone",
    )
    _measured_options(p)
    p.add_argument("script", help="a Python script; ray.init(address='auto') finds the cluster")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="reports side by side, with ratios to the first")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report directory or report.json")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a page (opens offline) with the table and each metric over time, "
        "every report overlaid",
    )
    p.set_defaults(func=cmd_compare)

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
