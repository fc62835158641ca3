"""The imbalance view on recorded data: the three reports of one `make bench-unequal` run
(tests/fixtures/unequal, 2026-12-03: sandbox hosts limited to 1.5 and 0.5 cores announcing 3
and 1 CPUs; fake_nn large, 10000 inputs, 3 repeats each; metrics and logs left out).

What the user could not read off their screenshots: in the round-robin runs the small node
got 40-60% of the work for 25% of the CPUs and kept the big one waiting; the balanced runs
split the work as the CPUs and ended together."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from raykit import balance, compare, report
from raykit.model import Report
from support import REPO

FIXTURES = REPO / "tests" / "fixtures" / "unequal"
BIG, SMALL = "10.89.222.11", "10.89.222.12"


def load(name: str) -> Report:
    return Report.load(json.loads((FIXTURES / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def reports() -> list[Report]:
    return [load("alone-fake_nn"), load("both-fake_nn"), load("both-fake_nn_balanced")]


def test_the_big_node_alone_has_nothing_to_balance(reports: list[Report]) -> None:
    alone = reports[0]
    for run in alone.runs:
        rows = balance.nodes(run.result)
        assert [(r.ip, r.cpus, r.workers, r.calls, r.work_share) for r in rows] == [
            (BIG, 3.0, 10, 1000, 1.0)
        ]
        assert balance.verdict(run.result) is None
    assert compare.balance_note(alone) is None


def test_round_robin_names_the_small_node(reports: list[Report]) -> None:
    verdicts = [balance.verdict(r.result) for r in reports[1].runs]
    assert verdicts == [
        f"node {SMALL} was busy 5.8 s after the others finished: its share of the work was "
        "40% for 25% of the CPUs",
        f"node {SMALL} was busy 20.7 s after the others finished: its share of the work was "
        "60% for 25% of the CPUs",
        f"node {SMALL} was busy 5.9 s after the others finished: its share of the work was "
        "40% for 25% of the CPUs",
    ]
    # Per CPU, both nodes worked at about the same rate: the announced CPUs are in proportion.
    for run in reports[1].runs:
        rates = [r.calls_per_s_per_cpu for r in balance.nodes(run.result)]
        assert all(rate is not None and 20 < rate < 28 for rate in rates), rates
    assert compare.balance_note(reports[1]) == f"run 1 (median): {verdicts[0]}"


def test_balanced_runs_end_together(reports: list[Report]) -> None:
    for run in reports[2].runs:
        text = balance.verdict(run.result)
        assert text is not None and text.startswith("balanced: every node finished within")
        lag = balance.late_s(run.result)
        assert lag is not None and lag < 0.3
        big, small = balance.nodes(run.result)
        assert big.work_share is not None and 0.72 < big.work_share < 0.78  # for 75% of CPUs
        assert small.work_share is not None and 0.22 < small.work_share < 0.28


def test_compare_shows_cpus_lag_and_verdicts(reports: list[Report]) -> None:
    table = {row.label: row for row in compare.rows(reports).rows}
    cpus = table["CPUs announced"]
    assert cpus.values == ["3", "4", "4"]
    assert cpus.ratios == [f"1.33{compare.TIMES}", f"1.33{compare.TIMES}"]  # the ideal speedup
    assert table["last node's lag (median)"].values == [report.DASH, "5.928 s", "0.110 s"]
    notes = compare.rows(reports).notes
    assert any(n.startswith("#2 fake_nn · 2 nodes: run 1 (median): node ") for n in notes)
    assert "#3 fake_nn_balanced · 2 nodes: run 3 (median): balanced: every node finished " in (
        " ".join(notes)
    )
    assert any("ideal speedup" in n for n in notes)


def test_report_pages_show_the_work_per_node(reports: list[Report], tmp_path: Path) -> None:
    paths = report.write(reports[1], tmp_path)
    md = paths["md"].read_text()
    section = md.split("## Work per node", 1)[1]
    rows = re.findall(
        r"^\| (\d) \| (10\.89\.222\.1[12]) \| (\d) \| (\d+) \| (\d+) \|", section, re.M
    )
    assert rows == [
        ("1", BIG, "3", "6", "600"),
        ("1", SMALL, "1", "4", "400"),
        ("2", BIG, "3", "4", "400"),
        ("2", SMALL, "1", "6", "600"),
        ("3", BIG, "3", "6", "600"),
        ("3", SMALL, "1", "4", "400"),
    ]
    assert f"- run 2: node {SMALL} was busy 20.7 s after the others finished" in md
    assert "CPUs announced to Ray by the inventory (ray_node_num_cpus)" in md
    html = paths["html"].read_text()
    assert "<h2>Work per node</h2>" in html
    assert f"run 2: node {SMALL} was busy 20.7 s after the others finished" in html
