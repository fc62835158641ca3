"""The bench loop with a fake job client (no cluster): what a report keeps when runs succeed,
fail part-way or are interrupted; and its small helpers."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from raykit import bench, jobs
from raykit.cluster import Cluster
from raykit.model import Report
from support import REPO

NODES = [
    {"name": "h", "node_ip": "10.0.0.1", "role": "head"},
    {"name": "w", "node_ip": "10.0.0.2", "role": "worker"},
]


def make_cluster() -> Cluster:
    access = {
        "schema": 1,
        "head": "h",
        "dashboard_url": "http://127.0.0.1:9",  # nothing listens: must not be needed
        "prometheus_url": None,
        "python": "3.13.5",
        "ray": "2.60.0",
        "lock_sha12": "29c3106e6271",
        "venv": "/opt/raykit/venvs/py3.13.5-ray2.60.0-29c3106e6271",
        "nodes": NODES,
    }
    return Cluster("inv", "lab", access, {}, token="t" * 64)


def log_for(i: int, ok: bool) -> str:
    lines = [
        'RAYKIT_MANIFEST {"driver_started": 100.0, "python": "3.13.5", "ray": "2.60.0", '
        '"venv": "/opt/raykit/venvs/py3.13.5-ray2.60.0-29c3106e6271"}',
        'RAYKIT_PROGRESS {"done": 5, "total": 5}',
    ]
    if ok:
        res = {
            "workload": "simple_tasks",
            "wall_s": 1.0 + i,
            "tasks": 5,
            "per_node": {"10.0.0.1": 3, "10.0.0.2": 2},
            "checksum": "abc",
            "driver_ended": 102.5 + i,
        }
        lines.append("RAYKIT_RESULT " + json.dumps(res))
    else:
        lines += ["Traceback (most recent call last):", "RuntimeError: broke on purpose"]
    return "\n".join(lines) + "\n"


@dataclass
class Status:
    value: str


@dataclass
class Info:
    message: str
    start_time: int = 1_000
    end_time: int = 4_000
    driver_exit_code: int = 0


@dataclass
class FakeJobs:
    """Ray's JobSubmissionClient as far as run_job uses it; run i fails if i in `fail`."""

    fail: set[int] = field(default_factory=set)
    interrupt: set[int] = field(default_factory=set)
    status: str = "FAILED"  # of a failed run
    message: str = "Job entrypoint command failed with exit code 1"
    submitted: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted.append(kwargs)
        return f"job-{len(self.submitted) - 1}"

    def _i(self, job_id: str) -> int:
        return int(job_id.split("-")[1])

    def get_job_status(self, job_id: str) -> Status:
        if self._i(job_id) in self.interrupt:
            raise KeyboardInterrupt
        return Status(self.status if self._i(job_id) in self.fail else "SUCCEEDED")

    def get_job_logs(self, job_id: str) -> str:
        return log_for(self._i(job_id), self._i(job_id) not in self.fail)

    def get_job_info(self, job_id: str) -> Info:
        failed = self._i(job_id) in self.fail
        return Info(self.message if failed else "ok")

    def stop_job(self, job_id: str) -> bool:
        self.stopped.append(job_id)
        return True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeJobs:
    jobs_ = FakeJobs()
    monkeypatch.setattr(bench, "client", lambda url, token: jobs_)
    monkeypatch.setattr(bench, "cluster_hosts", lambda c, url: [dict(n) for n in c.nodes])
    return jobs_


def run(tmp_path: Path, repeat: int) -> tuple[dict[str, Any], dict[str, Path], str]:
    """bench's report as its JSON data (what report.json holds), its files, what it printed."""
    buf = io.StringIO()
    job = bench.workload_job("simple_tasks", ["sleep_s=0.1"])
    report, paths = bench.bench(
        make_cluster(),
        job,
        repeat=repeat,
        reports_dir=tmp_path,
        console=Console(file=buf, width=200),
        tunnel="never",
    )
    assert isinstance(report, Report)
    doc = report.to_dict()
    assert json.loads(paths["json"].read_text()) == doc
    assert Report.load(paths["json"].parent) == report
    return doc, paths, buf.getvalue()


def test_repeated_runs_make_one_report(fake: FakeJobs, tmp_path: Path) -> None:
    doc, paths, _ = run(tmp_path, 3)
    assert doc["status"] == "succeeded" and doc["error"] is None and doc["error_detail"] is None
    assert [r["job_id"] for r in doc["runs"]] == ["job-0", "job-1", "job-2"]
    sub = fake.submitted[0]
    assert sub["entrypoint"] == (
        "/opt/raykit/venvs/py3.13.5-ray2.60.0-29c3106e6271/bin/python -m workloads "
        "simple_tasks --set sleep_s=0.1"
    )
    assert sub["runtime_env"] == {"py_modules": [str(bench.WORKLOADS_DIR)]}
    assert sub["metadata"] == {"raykit_report": doc["id"], "raykit_run": "0"}
    r = doc["runs"][1]
    assert r["workload_wall_s"] == 2.0
    assert r["driver_s"] == 3.5  # driver_ended - driver_started
    assert r["overhead_s"] == pytest.approx(r["wall_s"] - 3.5, abs=1e-3)
    assert doc["summary"]["workload_wall_s"]["median"] == 2.0
    # No monitoring host: every metric missing, with the reason; nothing else lost.
    assert r["metrics"]["missing"]
    assert all("no monitoring host" in v for v in r["metrics"]["missing"].values())
    assert doc["manifest"]["lock_sha12"] == "29c3106e6271"
    assert [h["node_ip"] for h in doc["manifest"]["hosts"]] == ["10.0.0.1", "10.0.0.2"]
    saved = json.loads(paths["json"].read_text())
    assert saved["runs"][2]["result"]["checksum"] == "abc"
    assert (paths["json"].parent / "job-3.log").read_text() == log_for(2, True)


def test_a_failed_run_keeps_the_runs_before_it(fake: FakeJobs, tmp_path: Path) -> None:
    fake.fail = {1}
    doc, paths, text = run(tmp_path, 3)
    assert doc["status"] == "failed"
    assert len(doc["runs"]) == 2 and len(fake.submitted) == 2  # stopped at the failure
    first, second = doc["runs"]
    assert first["status"] == "SUCCEEDED" and first["result"]["tasks"] == 5
    assert second["status"] == "FAILED" and second["result"] is None
    assert "RuntimeError: broke on purpose" in second["log_tail"]
    # The cause from the log's traceback, not Ray's "Job entrypoint command failed".
    assert doc["error"] == "run 2: job job-1 FAILED: RuntimeError: broke on purpose"
    assert (
        doc["error_detail"] == "Traceback (most recent call last):\nRuntimeError: broke on purpose"
    )
    assert "broke on purpose" in (paths["json"].parent / "job-2.log").read_text()
    assert doc["summary"]["wall_s"]["n"] == 1
    assert "failed" in text


def test_an_interrupted_run_stops_the_job_and_keeps_the_report(
    fake: FakeJobs, tmp_path: Path
) -> None:
    fake.interrupt = {1}
    doc, _, _ = run(tmp_path, 3)
    assert fake.stopped == ["job-1"]
    assert doc["status"] == "failed"
    assert "interrupted" in doc["error"]
    assert [r["status"] for r in doc["runs"]] == ["SUCCEEDED", "STOPPED"]


def test_a_rejected_submission_is_a_failed_report_without_runs(
    fake: FakeJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: Any) -> str:
        raise RuntimeError("Request failed with status code 401: Unauthorized")

    monkeypatch.setattr(fake, "submit_job", refuse)
    doc, _, _ = run(tmp_path, 2)
    assert doc["status"] == "failed" and doc["runs"] == []
    assert "not accepted" in doc["error"] and "401" in doc["error"]


def test_run_job_reports_progress_then_result() -> None:
    seen: list[dict[str, Any]] = []
    outcome = jobs.run_job(FakeJobs(), "python -m x", runtime_env={}, on_progress=seen.append)
    assert outcome.ok and outcome.result and outcome.result["tasks"] == 5
    assert seen == [{"done": 5, "total": 5}]
    assert outcome.job_info["start_time"] == 1.0 and outcome.job_info["end_time"] == 4.0


def test_script_job_uploads_only_the_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    (tmp_path / "big.bin").write_bytes(b"0" * 1000)
    job = bench.script_job(str(script), ["--epochs", "3"], None)
    try:
        assert job.working_dir is not None
        assert sorted(p.name for p in job.working_dir.iterdir()) == ["train.py"]
        assert job.entry_args == ["workloads.script", "train.py", "--epochs", "3"]
        assert job.name == "train" and job.kind == "script"
    finally:
        for path in job.cleanup:
            shutil.rmtree(path)


def test_script_job_with_a_working_dir(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    script = tmp_path / "pkg" / "main.py"
    script.write_text("")
    job = bench.script_job(str(script), [], str(tmp_path))
    assert job.working_dir == tmp_path.resolve() and not job.cleanup
    assert job.entry_args == ["workloads.script", "pkg/main.py"]


def test_report_dirs_never_collide(tmp_path: Path) -> None:
    first = bench.claim_report_dir(tmp_path / "r", "20261126T210455Z-fake_nn")
    second = bench.claim_report_dir(tmp_path / "r", "20261126T210455Z-fake_nn")
    assert first == ("20261126T210455Z-fake_nn", tmp_path / "r" / "20261126T210455Z-fake_nn")
    assert second[0] == "20261126T210455Z-fake_nn-2" and second[1].is_dir()


def test_an_unreachable_cluster_leaves_no_empty_report_dir(
    fake: FakeJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(url: str, token: str) -> FakeJobs:
        raise jobs.JobError("cannot reach Ray's Jobs API at http://127.0.0.1:9: refused")

    monkeypatch.setattr(bench, "client", unreachable)
    with pytest.raises(jobs.JobError):
        run(tmp_path, 1)
    assert list(tmp_path.iterdir()) == []
    doc, paths, _ = run_ok(tmp_path, fake, monkeypatch)
    assert paths["json"].parent.parent == tmp_path and doc["status"] == "succeeded"


def run_ok(
    tmp_path: Path, fake: FakeJobs, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Path], str]:
    monkeypatch.setattr(bench, "client", lambda url, token: fake)
    return run(tmp_path, 1)


def test_ctrl_c_while_prometheus_is_asked_keeps_the_runs_done(
    fake: FakeJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raykit import metrics

    real = metrics.collect
    calls = []

    def collect(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "collect", collect)
    doc, paths, _ = run(tmp_path, 3)
    assert doc["status"] == "failed"
    assert doc["error"] == "interrupted (Ctrl-C) after 1 complete run(s)"
    assert [r["job_id"] for r in doc["runs"]] == ["job-0"]
    assert json.loads(paths["json"].read_text())["runs"][0]["result"]["tasks"] == 5


def test_a_lost_node_is_reported_by_its_cause_without_colour_codes(
    fake: FakeJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure of tests/fixtures/job_failures/actor-lost-node-death through the whole
    bench: report.json, .md, .html and the saved log name the cause, in plain text."""
    d = REPO / "tests" / "fixtures" / "job_failures" / "actor-lost-node-death"
    log, message = (d / "job.log").read_text(), (d / "message.txt").read_text()
    assert "\x1b[33m" in log and "\x1b[33m" in message
    fake.fail = {0}
    monkeypatch.setattr(fake, "get_job_logs", lambda job_id: log)
    monkeypatch.setattr(fake, "get_job_info", lambda job_id: Info(message))
    doc, paths, _ = run(tmp_path, 1)
    cause = "ray.exceptions.ActorUnavailableError: The actor c8f9d3a2b17e5f4a6d0b9e8c02000000"
    assert doc["error"].startswith(f"run 1: job job-0 FAILED: {cause} is unavailable: ")
    assert doc["error_detail"].startswith("Traceback (most recent call last):\n")
    assert doc["error_detail"].endswith("may or may not have been executed on the actor.")
    (r,) = doc["runs"]
    assert r["message"].startswith("Job entrypoint command failed with exit code 1")
    assert r["log_tail"].endswith("ray/core/src/ray/raylet/raylet(+0x8bbdcb)")
    out = paths["json"].parent
    for name in ("report.json", "report.md", "report.html", "job-1.log"):
        text = (out / name).read_text()
        assert "\x1b" not in text and "[33m" not in text, name
    assert cause in (out / "report.md").read_text()
    assert cause in (out / "report.html").read_text()
    assert (out / "job-1.log").read_text().splitlines()[-1].startswith("(raylet, ip=10.89.0.12) ")


def test_a_stopped_job_says_it_was_stopped(fake: FakeJobs, tmp_path: Path) -> None:
    fake.fail = {0}
    fake.status = "STOPPED"
    fake.message = "Job was intentionally stopped."
    doc, _, _ = run(tmp_path, 1)
    assert doc["error"] == "run 1: job job-0 STOPPED: Job was intentionally stopped."
    assert doc["error_detail"] is None


def test_a_workloads_retries_go_to_the_job_and_into_the_reports_params() -> None:
    job = bench.workload_job("fake_nn_balanced", ["retries=2", "preset=small"])
    assert job.params["retries"] == 2 and job.params["inflight"] == 2
    assert job.entry_args == [
        "workloads",
        "fake_nn_balanced",
        "--set",
        "retries=2",
        "--set",
        "preset=small",
    ]
    assert bench.workload_job("fake_nn_balanced", []).params["retries"] == 0
    with pytest.raises(bench.ClusterError, match="retries must be >= 0, got -2"):
        bench.workload_job("fake_nn_balanced", ["retries=-2"])
