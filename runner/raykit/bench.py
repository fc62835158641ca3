"""`raykit bench` and `raykit run`: a job on the cluster, timed, measured, saved as a report.

One run = submit through Ray's Jobs API, follow with a live progress line, then ask Prometheus
about the run's window. Runs repeat (``--repeat``); the report is written whatever happened:
a failed or interrupted run keeps its log, the runs before it keep their figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from rich.console import Console

from raykit import __version__
from raykit.cluster import Cluster, ClusterError, open_endpoints
from raykit.jobs import (
    JobError,
    JobInterrupted,
    JobOutcome,
    client,
    explain_failure,
    plain_text,
    run_job,
    workloads_module,
)
from raykit.model import Host, Manifest, Report, Run, RunMetrics, summarize
from raykit.playbooks import REPO

WORKLOADS_DIR = REPO / "workloads"
LOG_TAIL_LINES = 40


@dataclass
class Job:
    """What to run: a named workload (bench) or a user's script (run)."""

    name: str
    kind: str  # "workload" | "script"
    params: dict[str, Any]
    entry_args: list[str]  # after `python -m`
    working_dir: Path | None = None
    cleanup: list[Path] = field(default_factory=list)

    def entrypoint(self, python: str) -> str:
        return shlex.join([python, "-m", *self.entry_args])

    def runtime_env(self) -> dict[str, Any]:
        env: dict[str, Any] = {"py_modules": [str(WORKLOADS_DIR)]}
        if self.working_dir is not None:
            env["working_dir"] = str(self.working_dir)
        return env


def workloads_common() -> Any:
    """The workloads package's registry and parameter parsing."""
    return workloads_module("workloads.registry")


def workload_job(name: str, sets: Sequence[str]) -> Job:
    """A seed workload with --set overrides, validated here before anything is submitted."""
    _common = workloads_common()

    if name not in _common.WORKLOADS:
        raise ClusterError(
            f"unknown workload {name!r}; choose one of: {', '.join(sorted(_common.WORKLOADS))}"
        )
    try:
        params = _common.parse_sets(name, list(sets))
    except ValueError as exc:
        raise ClusterError(f"--set for {name}: {exc}") from None
    args = ["workloads", name]
    for item in sets:
        args += ["--set", item]
    return Job(name=name, kind="workload", params=params, entry_args=args)


def script_job(script: str, argv: Sequence[str], working_dir: str | None) -> Job:
    """A user's script, unmodified: uploaded (alone, or with --working-dir) and run as a job."""
    path = Path(script).expanduser()
    if not path.is_file():
        raise ClusterError(f"script {path} does not exist (or is not a file).")
    cleanup: list[Path] = []
    if working_dir:
        wdir = Path(working_dir).expanduser().resolve()
        if not wdir.is_dir():
            raise ClusterError(f"--working-dir {wdir} is not a directory.")
        try:
            rel = path.resolve().relative_to(wdir)
        except ValueError:
            raise ClusterError(f"the script {path} is not inside --working-dir {wdir}.") from None
    else:
        # Only the script travels: a script in a big directory must not upload all of it.
        wdir = Path(tempfile.mkdtemp(prefix="raykit-run-"))
        shutil.copy2(path, wdir / path.name)
        cleanup.append(wdir)
        rel = Path(path.name)
    return Job(
        name=path.stem,
        kind="script",
        params={"script": str(rel), "argv": list(argv)},
        entry_args=["workloads.script", str(rel), *argv],
        working_dir=wdir,
        cleanup=cleanup,
    )


# --------------------------------------------------------------------------------------------


def ray_nodes(cluster: Cluster, dashboard_url: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every node Ray's state API knows (alive and dead), as it reports them; raises
    requests.RequestException, or ValueError for an answer of another shape."""
    r = requests.get(
        f"{dashboard_url}/api/v0/nodes",
        params={"detail": "true", "limit": "1000"},
        headers={"Authorization": f"Bearer {cluster.token}"},
        timeout=timeout,
    )
    r.raise_for_status()
    try:
        nodes = r.json()["data"]["result"]["result"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"unexpected answer from {dashboard_url}/api/v0/nodes: {exc}") from None
    return [n for n in nodes if isinstance(n, dict)]


def cluster_hosts(
    cluster: Cluster, dashboard_url: str, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The manifest's hosts: the inventory's nodes with what Ray reports for each."""
    ray_nodes_by_ip: dict[str, dict[str, Any]] = {}
    try:
        for node in ray_nodes(cluster, dashboard_url, timeout):
            if node.get("state") == "ALIVE" or node.get("node_ip") not in ray_nodes_by_ip:
                ray_nodes_by_ip[str(node.get("node_ip"))] = node
    except (requests.RequestException, ValueError):
        pass
    hosts = []
    for n in cluster.nodes:
        node = ray_nodes_by_ip.get(n["node_ip"], {})
        res = node.get("resources_total") or {}
        hosts.append(
            {
                "name": n["name"],
                "node_ip": n["node_ip"],
                "role": n["role"],
                "cpus": res.get("CPU"),
                "memory_bytes": res.get("memory"),
                "object_store_bytes": res.get("object_store_memory"),
                "alive": node.get("state") == "ALIVE" if node else None,
            }
        )
    return hosts


def announced_note(cluster: Cluster, hosts: Sequence[Host]) -> str | None:
    """A note for a report whose nodes' CPUs were set by the inventory (ray_node_num_cpus)
    rather than counted by Ray: which hosts, what they set, and what Ray reports."""
    reported = {h.name: h.cpus for h in hosts}
    parts = []
    for n in cluster.nodes:
        value = cluster.hostvars.get(n["name"], {}).get("ray_node_num_cpus")
        if value in (None, ""):
            continue
        part = f"{n['name']} {value}"
        seen = reported.get(n["name"])
        if seen is not None and str(value) not in (f"{seen:g}", str(seen)):
            part += f" (Ray reports {seen:g}: set otherwise at deploy time, e.g. with -e)"
        parts.append(part)
    if not parts:
        return None
    return (
        "CPUs announced to Ray by the inventory (ray_node_num_cpus), not counted by Ray: "
        + ", ".join(parts)
    )


def _run_record(index: int, outcome: JobOutcome, metrics: dict[str, Any], log_name: str) -> Run:
    result = outcome.result
    # The driver's own life (head clock), and what the runner added around it: submission,
    # scheduling the driver, noticing the end (control node clock; differences only).
    started = (outcome.manifest or {}).get("driver_started")
    ended = (result or {}).get("driver_ended")
    driver_s = ended - started if isinstance(started, float) and isinstance(ended, float) else None
    return Run(
        index=index,
        job_id=outcome.job_id,
        status=outcome.status,
        message=plain_text(outcome.message),
        start=outcome.start,
        end=outcome.end,
        wall_s=round(outcome.wall_s, 3),
        workload_wall_s=(result or {}).get("wall_s"),
        driver_s=round(driver_s, 3) if driver_s is not None else None,
        overhead_s=round(outcome.wall_s - driver_s, 3) if driver_s is not None else None,
        result=result,
        log=log_name,
        log_tail="\n".join(plain_text(outcome.log).splitlines()[-LOG_TAIL_LINES:]),
        job=outcome.job_info,
        metrics=RunMetrics.from_dict(metrics, f"runs[{index}].metrics"),
    )


@contextlib.contextmanager
def _progress(
    console: Console, label: str
) -> Iterator[tuple[Callable[[dict[str, Any]], None], Callable[[str], None]]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, status="PENDING")

        def on_progress(p: dict[str, Any]) -> None:
            bar.update(task, completed=p.get("done", 0), total=p.get("total"))

        def on_status(s: str) -> None:
            bar.update(task, status=s)

        yield on_progress, on_status


def bench(
    cluster: Cluster,
    job: Job,
    *,
    repeat: int = 1,
    reports_dir: Path,
    console: Console,
    tunnel: str = "auto",
    settle: bool = True,
) -> tuple[Report, dict[str, Path]]:
    """Run `job` `repeat` times and write the report; return it and its files."""
    from raykit import metrics, report

    notes: list[str] = []
    runs: list[Run] = []
    logs: dict[str, str] = {}
    error: str | None = None
    error_detail: str | None = None
    manifest = Manifest()
    created = time.time()
    rid, out = claim_report_dir(reports_dir, report.new_id(job.name, created))
    with contextlib.ExitStack() as stack:
        # An error before any run (the cluster could not be reached): no empty report
        # directory stays behind.
        stack.push(lambda kind, *_: _drop_if_empty(out) if kind is not None else None)
        for path in job.cleanup:
            stack.callback(shutil.rmtree, path, ignore_errors=True)
        dash, prom = open_endpoints(cluster, stack, tunnel, notes)
        interval = metrics.scrape_interval(prom)
        jobs = client(dash, cluster.token)
        manifest = Manifest(
            raykit_version=__version__,
            inventory=str(cluster.inventory),
            cluster_name=cluster.name,
            dashboard_url=cluster.dashboard_url,
            prometheus_url=cluster.prometheus_url,
            python=cluster.access.get("python"),
            ray=cluster.access.get("ray"),
            venv=cluster.access.get("venv"),
            lock_sha12=cluster.access.get("lock_sha12"),
            hosts=tuple(
                Host.from_dict(h, f"manifest.hosts[{i}]")
                for i, h in enumerate(cluster_hosts(cluster, dash))
            ),
        )
        if (note := announced_note(cluster, manifest.hosts)) is not None:
            notes.append(note)
        python = f"{cluster.access['venv']}/bin/python"
        try:
            for i in range(repeat):
                label = f"{job.name} {i + 1}/{repeat}" if repeat > 1 else job.name
                interrupted = False
                try:
                    with _progress(console, label) as (on_progress, on_status):
                        outcome = run_job(
                            jobs,
                            job.entrypoint(python),
                            runtime_env=job.runtime_env(),
                            metadata={"raykit_report": rid, "raykit_run": str(i)},
                            on_progress=on_progress,
                            on_status=on_status,
                        )
                except JobInterrupted as exc:
                    outcome, interrupted = exc.outcome, True
                except JobError as exc:
                    error = str(exc)
                    break
                manifest = _note_manifest(manifest, outcome)
                mx = metrics.collect(
                    prom,
                    [h.node_ip for h in manifest.hosts if h.node_ip is not None],
                    outcome.start,
                    outcome.end,
                    scrape_interval=interval,
                    settle=settle and not interrupted,
                )
                log_name = f"job-{i + 1}.log"
                logs[log_name] = plain_text(outcome.log)
                runs.append(_run_record(i, outcome, mx, log_name))
                _print_run(console, label, outcome)
                if interrupted:
                    error = f"run {i + 1} interrupted (Ctrl-C); job {outcome.job_id} stopped"
                    break
                if not outcome.ok:
                    error, error_detail = _failure(i, outcome)
                    break
        except KeyboardInterrupt:
            # Ctrl-C between jobs or while Prometheus is asked: the runs done so far stay.
            error = f"interrupted (Ctrl-C) after {len(runs)} complete run(s)"
    status = "succeeded" if error is None and len(runs) == repeat else "failed"
    doc = Report(
        id=rid,
        name=job.name,
        kind=job.kind,
        params=job.params,
        status=status,
        error=plain_text(error) if error else None,
        error_detail=error_detail,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        notes=tuple(notes),
        manifest=manifest,
        runs=tuple(runs),
        summary=summarize(runs),
    )
    paths = report.write(doc, out)
    for name, text in logs.items():
        (out / name).write_text(text)
    return doc, paths


def _drop_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()  # only succeeds when empty


def claim_report_dir(reports_dir: Path, rid: str) -> tuple[str, Path]:
    """Create the report's directory before the run; a second report of the same name in the
    same second (two commands at once) gets `-2`, `-3`, ... instead of overwriting."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = rid if n == 1 else f"{rid}-{n}"
        try:
            (reports_dir / candidate).mkdir()
        except FileExistsError:
            continue
        return candidate, reports_dir / candidate
    raise ClusterError(f"cannot create a report directory for {rid} in {reports_dir}")


def _note_manifest(manifest: Manifest, outcome: JobOutcome) -> Manifest:
    """The interpreter the job really ran with (as the latest run said)."""
    m = outcome.manifest or {}
    said: dict[str, Any] = {key: m[key] for key in ("python", "ray", "venv") if m.get(key)}
    venv = str(m.get("venv") or "")
    if "-" in venv:
        said["lock_sha12"] = venv.rsplit("-", 1)[-1]
    return dataclasses.replace(manifest, **said)


def _failure(i: int, outcome: JobOutcome) -> tuple[str, str | None]:
    """The report's `error` for a run that did not succeed (one line naming the cause) and its
    `error_detail` (the traceback or message behind it, None when there is nothing more)."""
    if outcome.status == "SUCCEEDED":
        return f"run {i + 1}: job {outcome.job_id} ended without a raykit result line", None
    why = explain_failure(outcome.status, outcome.message, outcome.log)
    line = f"run {i + 1}: job {outcome.job_id} {outcome.status}: {why.cause}".strip(" :")
    return line, why.detail or None


def _print_run(console: Console, label: str, outcome: JobOutcome) -> None:
    res = outcome.result or {}
    inner = res.get("wall_s")
    colour = "green" if outcome.ok else "red"
    text = f"[{colour}]{outcome.status.lower()}[/{colour}] {label}: {outcome.wall_s:.2f} s"
    if isinstance(inner, int | float):
        text += f" (workload {inner:.2f} s)"
    if res.get("per_node"):
        text += "  " + ", ".join(f"{ip}: {n}" for ip, n in sorted(res["per_node"].items()))
    console.print(text, highlight=False)
