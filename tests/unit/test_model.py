"""raykit.model: saved reports load and dump back unchanged (today's, an earlier raykit's, a
later one's with fields this one does not know), a malformed one is an error naming the file
and the field, and the metric table is the one list that metrics, report and compare read.

tests/fixtures/saved-reports holds reports written by raykit before the model existed (its
report.write over metrics.collect's blocks of tests/fixtures/prometheus), with their
report.md: the on-disk format and the Markdown they must keep giving."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, get_args

import pytest

from raykit import compare, metrics, model, report
from raykit.model import Report, ReportError, Run
from support import REPO

FIXTURES = REPO / "tests" / "fixtures" / "saved-reports"
SAVED = sorted(FIXTURES.iterdir())
FAKE_NN = FIXTURES / "20261126T205300Z-fake_nn"


def saved_json(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / "report.json").read_text())
    return doc


def write_json(tmp_path: Path, doc: Any) -> Path:
    file = tmp_path / "report.json"
    file.write_text(json.dumps(doc))
    return file


# --- load and dump -------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_a_saved_report_loads_and_dumps_byte_for_byte(path: Path) -> None:
    loaded = Report.load(path)
    assert loaded.dump() == (path / "report.json").read_text()
    assert loaded.to_dict() == saved_json(path)
    assert Report.load(path / "report.json") == loaded
    # And reads as it did: the same report.md as the raykit that wrote it.
    assert report.render_markdown(loaded) == (path / "report.md").read_text()


def test_the_model_holds_the_reports_figures() -> None:
    r = Report.load(FAKE_NN)
    assert (r.id, r.kind, r.status, r.succeeded) == (FAKE_NN.name, "workload", "failed", False)
    assert r.error is not None and r.error.endswith("RuntimeError: the workload broke")
    assert [h.alive for h in r.manifest.hosts] == [True, True, True, False]
    assert r.manifest.prometheus_url == "http://10.89.154.11:9090"
    first, second = r.runs
    assert first.succeeded and not second.succeeded and r.ok_runs == (first,)
    assert first.checksum == "9f2c4e1b" * 8 and second.checksum is None
    assert first.metrics is not None and first.metrics.window is not None
    assert first.metrics.window.start == first.start
    cpu = first.metrics.series["cpu_pct"]["10.89.154.11"]
    assert cpu and all(isinstance(t, float) and isinstance(v, float) for t, v in cpu)
    assert second.metrics is not None
    assert second.metrics.cluster["cpu_pct_mean"] is None
    assert "10.89.154.14" in second.metrics.missing["cluster.cpu_pct_mean"]
    assert r.summary is not None and r.summary["wall_s"].n == 1
    assert r.stats("wall_s") == r.summary["wall_s"]


def test_a_report_of_an_earlier_raykit_dumps_without_fields_it_never_had(tmp_path: Path) -> None:
    """The first reports had no error_detail, driver_s or overhead_s: they load, render, and
    dump without them (not with nulls they never had)."""
    doc = saved_json(FAKE_NN)
    del doc["error_detail"]
    for run in doc["runs"]:
        del run["driver_s"], run["overhead_s"]
    del doc["manifest"]["hosts"][0]["alive"]
    loaded = Report.load(write_json(tmp_path, doc))
    assert loaded.to_dict() == doc
    assert loaded.error_detail is None and loaded.runs[0].driver_s is None
    assert "Details:" not in report.render_markdown(loaded)
    # A field given a value since is written, absent from the file or not.
    fixed = dataclasses.replace(loaded, error_detail="Traceback: x")
    assert fixed.to_dict()["error_detail"] == "Traceback: x"


def test_a_report_without_a_summary_gets_one_from_its_runs(tmp_path: Path) -> None:
    doc = saved_json(FAKE_NN)
    saved = doc.pop("summary")
    loaded = Report.load(write_json(tmp_path, doc))
    assert loaded.summary is None and "summary" not in loaded.to_dict()
    assert loaded.stats("wall_s").to_dict() == saved["wall_s"]


def test_fields_this_raykit_does_not_know_are_kept(tmp_path: Path) -> None:
    doc = saved_json(FAKE_NN)
    doc["schema_note"] = {"from": "a later raykit"}
    doc["manifest"]["hosts"][1]["gpus"] = 2
    doc["runs"][0]["energy_j"] = 12.5
    doc["runs"][0]["metrics"]["gpu"] = {"10.89.154.11": [1, 2]}
    doc["runs"][0]["metrics"]["window"]["tz"] = "UTC"
    doc["summary"]["wall_s"]["p90"] = 7.0
    loaded = Report.load(write_json(tmp_path, doc))
    assert loaded.to_dict() == doc
    assert loaded.runs[0].extra == {"energy_j": 12.5}


def test_a_document_loads_as_its_file_does(tmp_path: Path) -> None:
    doc = saved_json(FAKE_NN)
    assert Report.load(doc) == Report.load(FAKE_NN) == report.load(FAKE_NN)
    with pytest.raises(ReportError, match=r"the report: not a raykit report \(no runs\)"):
        Report.load({"schema": 1})


def test_dump_is_strict_json() -> None:
    r = Report(runs=(Run(status="SUCCEEDED", wall_s=float("nan")),))
    assert json.loads(r.dump())["runs"][0]["wall_s"] is None
    assert r.dump().startswith('{\n  "schema": 1,')


def test_a_report_made_in_code_has_every_field() -> None:
    """What bench writes: every field, in report.json's order."""
    doc = Report(id="x", runs=(Run(index=0),)).to_dict()
    assert list(doc) == [
        "schema",
        "id",
        "name",
        "kind",
        "params",
        "status",
        "error",
        "error_detail",
        "created",
        "notes",
        "manifest",
        "runs",
        "summary",
    ]
    assert list(doc["runs"][0])[:4] == ["index", "job_id", "status", "message"]
    assert doc["runs"][0]["metrics"] is None and doc["manifest"]["hosts"] == []


# --- malformed reports ---------------------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (
            _set("runs/1/wall_s", "fast"),
            "runs[1].wall_s",
            "expected a number or null, got a string",
        ),
        (_set("runs/0/index", 1.5), "runs[0].index", "expected a whole number"),
        (_set("runs/0", 5), "runs[0]", "expected an object, got a number 5"),
        (_set("runs", {"0": {}}), "runs", "expected a list, got an object"),
        (_set("status", 3), "status", "expected a string or null"),
        (_set("notes", "look"), "notes", "expected a list"),
        (_set("notes/0", None), "notes[0]", "expected a string, got null"),
        (_set("params", ["a"]), "params", "expected an object or null, got a list"),
        (_set("manifest", None), "manifest", "expected an object, got null"),
        (_set("manifest/hosts/2/alive", "yes"), "manifest.hosts[2].alive", "expected true, false"),
        (
            _set("manifest/hosts/0/cpus", True),
            "manifest.hosts[0].cpus",
            "expected a number or null, got true",
        ),
        (
            _set("runs/0/metrics/series/cpu_pct/10.89.154.12/3", [1.0]),
            "runs[0].metrics.series.cpu_pct.10.89.154.12[3]",
            "expected a [time, value] pair",
        ),
        (
            _set("runs/0/metrics/nodes/10.89.154.13/samples", "12"),
            "runs[0].metrics.nodes.10.89.154.13.samples",
            "expected a number",
        ),
        (
            _set("runs/1/metrics/missing/settle", 1),
            "runs[1].metrics.missing.settle",
            "expected a string, got a number 1",
        ),
        (_set("summary/wall_s/n", "1"), "summary.wall_s.n", "expected a whole number"),
    ],
)
def test_a_malformed_report_names_the_file_and_the_field(
    tmp_path: Path, change: Any, field: str, problem: str
) -> None:
    doc = copy.deepcopy(saved_json(FAKE_NN))
    change(doc)
    file = write_json(tmp_path, doc)
    with pytest.raises(ValueError) as exc:
        report.load(file)
    assert isinstance(exc.value, ReportError)
    text = str(exc.value)
    assert text.startswith(f"{file}: not a raykit report ({field}: {problem}"), text


@pytest.mark.parametrize(("drop", "said"), [("runs", "no runs"), ("schema", "no schema")])
def test_a_report_without_schema_or_runs_says_which(tmp_path: Path, drop: str, said: str) -> None:
    doc = saved_json(FAKE_NN)
    del doc[drop]
    file = write_json(tmp_path, doc)
    with pytest.raises(ReportError, match=rf"^{file}: not a raykit report \({said}\)$"):
        report.load(file)


# --- the metric table ----------------------------------------------------------------------


def test_the_metric_table_is_the_one_list() -> None:
    """metrics asks Prometheus for the table's figures, report shows them, compare compares
    the ones it marks, each in the table's order."""
    keys = {s: [m.key for m in model.METRICS if m.scope == s] for s in get_args(model.Scope)}
    assert list(metrics.NODE_FIELDS) == keys["nodes"]
    assert list(metrics.CLUSTER_FIELDS) == keys["cluster"]
    assert list(metrics.SERIES) == keys["series"]
    ips = ["10.0.0.1", "10.0.0.2"]
    assert set(metrics.node_queries(ips, 30.0)) == set(keys["nodes"])
    assert set(metrics.cluster_queries(ips, 30.0)) == set(keys["cluster"])
    assert set(metrics.series_queries(ips, 5.0)) == set(keys["series"])
    assert set(metrics.all_queries(ips, 30.0, 5.0)) == {
        m.path for m in model.METRICS if m.scope != "summary"
    }
    block = metrics.empty_block(ips, 0.0, 1.0, 1.0)
    assert list(block["nodes"]["10.0.0.1"]) == keys["nodes"]
    assert list(block["cluster"]) == keys["cluster"] and list(block["series"]) == keys["series"]
    # Each summary metric summarises the run field of its name; each cluster total needs a
    # node figure of the table.
    run_fields = {f.name for f in dataclasses.fields(Run)}
    assert set(keys["summary"]) <= run_fields
    assert {m.needs for m in model.CLUSTER_METRICS} <= set(keys["nodes"])
    # Every unit can be shown, and every series plotted.
    assert {m.unit for m in model.METRICS} <= set(report.FORMATS)
    assert {m.unit for m in model.SERIES_METRICS} <= set(report.PLOT_UNITS)
    # compare: the marked metrics, then the node count and the checksum.
    labels = [r.label for r in compare.rows([Report.load(FAKE_NN)]).rows]
    assert labels == [m.compare for m in model.METRICS if m.compare] + ["nodes", "checksum"]


def test_the_object_store_is_named_by_its_own_label() -> None:
    labels = {m.label for m in model.METRICS if m.source == model.OBJECT_STORE_USED}
    assert labels == {"NodeAddress"}
    assert {m.label for m in model.METRICS if m.source == model.CPU} == {"ip"}
