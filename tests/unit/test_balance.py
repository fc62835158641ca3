"""raykit.balance: work per node and the one-line verdict on whether a node kept the others
waiting, on hand-made results (the recorded benchmark's are in test_balance_recorded)."""

from __future__ import annotations

from typing import Any

import pytest

from raykit import balance


def result(
    work: dict[str, tuple[int, float, float]],
    cpus: dict[str, float] | None = None,
    wall_s: float = 10.0,
) -> dict[str, Any]:
    """A workload result: per node (calls, first start, last end), 2 workers each."""
    return {
        "wall_s": wall_s,
        "node_work": {
            ip: {
                "workers": 2,
                "calls": calls,
                "busy_s": 2 * (end - start),
                "first_start_s": start,
                "last_end_s": end,
            }
            for ip, (calls, start, end) in work.items()
        },
        **({"node_cpus": cpus} if cpus is not None else {}),
    }


def test_nodes_shares_and_rates() -> None:
    rows = balance.nodes(
        result(
            {"10.0.0.1": (300, 0.0, 5.0), "10.0.0.2": (100, 0.5, 10.5)},
            {"10.0.0.1": 3.0, "10.0.0.2": 1.0},
        )
    )
    big, small = rows
    assert (big.ip, big.cpus, big.calls, big.workers) == ("10.0.0.1", 3.0, 300, 2)
    assert big.work_share == 0.75 and big.cpu_share == 0.75
    assert small.work_share == 0.25 and small.cpu_share == 0.25
    assert big.active_s == 5.0 and small.active_s == 10.0
    assert big.calls_per_s_per_cpu == pytest.approx(20.0)  # 300 calls / 5 s / 3 CPUs
    assert small.calls_per_s_per_cpu == pytest.approx(10.0)  # 100 / 10 / 1
    assert big.busy_s == 10.0


def test_late_node_is_named_with_its_shares() -> None:
    """The seed's case: round robin gave the small node half the work for a quarter of the
    CPUs; it worked on long after the big one was done."""
    res = result(
        {"10.0.0.1": (500, 0.0, 5.2), "10.0.0.2": (500, 0.1, 15.4)},
        {"10.0.0.1": 3.0, "10.0.0.2": 1.0},
        wall_s=15.5,
    )
    assert balance.verdict(res) == (
        "node 10.0.0.2 was busy 10.2 s after the others finished: its share of the work was "
        "50% for 25% of the CPUs"
    )
    assert balance.late_s(res) == pytest.approx(10.2)


def test_balanced_run_says_so() -> None:
    res = result(
        {"10.0.0.1": (740, 0.0, 7.9), "10.0.0.2": (260, 0.0, 8.0)},
        {"10.0.0.1": 3.0, "10.0.0.2": 1.0},
        wall_s=8.0,
    )
    assert balance.verdict(res) == "balanced: every node finished within 0.1 s of the others"


def test_late_means_a_second_and_a_tenth_of_the_wall() -> None:
    # 1.5 s late in a 20 s run: under 10% of the wall, so still balanced.
    short = {"10.0.0.1": (10, 0.0, 18.5), "10.0.0.2": (10, 0.0, 20.0)}
    assert balance.verdict(result(short, wall_s=20.0)).startswith("balanced")
    # 0.8 s late in a 2 s run: 40% of the wall but under a second.
    assert balance.verdict(result({"a": (1, 0, 1.2), "b": (1, 0, 2.0)}, wall_s=2.0)).startswith(
        "balanced"
    )
    # 2.5 s late in a 20 s run: named.
    late = {"10.0.0.1": (10, 0.0, 17.5), "10.0.0.2": (10, 0.0, 20.0)}
    assert balance.verdict(result(late, wall_s=20.0)).startswith("node 10.0.0.2 was busy 2.5 s")


def test_three_nodes_lag_is_after_the_second_to_last() -> None:
    res = result(
        {"a": (10, 0.0, 3.0), "b": (10, 0.0, 6.0), "c": (10, 0.0, 9.0)},
        {"a": 2.0, "b": 1.0, "c": 1.0},
    )
    assert balance.verdict(res) == (
        "node c was busy 3.0 s after the others finished: its share of the work was 33% for "
        "25% of the CPUs"
    )


def test_idle_node_is_named() -> None:
    res = result({"10.0.0.1": (100, 0.0, 9.0)}, {"10.0.0.1": 3.0, "10.0.0.2": 1.0}, wall_s=9.0)
    rows = balance.nodes(res)
    assert [(r.ip, r.calls, r.cpu_share) for r in rows] == [
        ("10.0.0.1", 100, 0.75),
        ("10.0.0.2", 0, 0.25),
    ]
    assert balance.verdict(res) == "node 10.0.0.2 did none of the work (1 CPUs idle)"
    assert balance.late_s(res) is None


def test_nothing_to_balance() -> None:
    assert balance.nodes(None) == [] and balance.verdict(None) is None
    assert balance.verdict({"wall_s": 3.0, "per_node": {"a": 3}}) is None  # no node_work
    one = result({"10.0.0.1": (100, 0.0, 9.0)}, {"10.0.0.1": 3.0})
    assert len(balance.nodes(one)) == 1 and balance.verdict(one) is None


def test_without_cpus_the_share_is_unknown() -> None:
    res = result({"a": (1, 0.0, 1.0), "b": (3, 0.0, 9.0)}, wall_s=9.0)
    assert balance.verdict(res) == (
        "node b was busy 8.0 s after the others finished: its share of the work was 75% for ?% "
        "of the CPUs"
    )
    assert balance.nodes(res)[0].calls_per_s_per_cpu is None


def test_malformed_entries_count_for_nothing() -> None:
    res = {
        "wall_s": 5.0,
        "node_work": {"a": {"calls": "many"}, "b": None, "c": {"calls": 2, "last_end_s": 4.0}},
        "node_cpus": {"a": "two", "c": 1},
    }
    rows = balance.nodes(res)
    assert [(r.ip, r.calls, r.cpus) for r in rows] == [
        ("a", 0, None),
        ("b", 0, None),
        ("c", 2, 1.0),
    ]
    assert balance.verdict(res) is None  # one node did work, the others announced nothing
