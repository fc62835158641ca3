"""Work per node, and whether one node kept the others waiting: what the seed's user tried to
read off dashboard screenshots when two unequal machines ran slower than the big one alone.

A workload that says what each node's workers did (`node_work` in its result: calls, busy
seconds, first start and last end since the first submission; see workloads/_common.py) and
what each node announced to Ray (`node_cpus`) gets, per run, a row per node and a one-line
verdict. The verdict names the node that finished last when it finished "far" later than the
others (LATE_S and LATE_SHARE of the run's wall time, whichever is more), with its share of
the work against its share of the CPUs; a node that announced CPUs and did nothing is named
too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raykit.model import finite

# "Far later": at least this many seconds, and at least this share of the run's wall time.
LATE_S = 1.0
LATE_SHARE = 0.1


@dataclass(frozen=True)
class NodeWork:
    """One node in one run."""

    ip: str
    cpus: float | None  # announced to Ray; None when the result does not say
    workers: int
    calls: int
    busy_s: float
    first_start_s: float | None
    last_end_s: float | None
    work_share: float | None  # of all calls, 0..1
    cpu_share: float | None  # of the CPUs of the nodes the run saw, 0..1

    @property
    def active_s(self) -> float | None:
        """From its first call's start to its last call's end."""
        if self.first_start_s is None or self.last_end_s is None:
            return None
        return self.last_end_s - self.first_start_s

    @property
    def calls_per_s_per_cpu(self) -> float | None:
        """Calls a second, over its active time, per announced CPU."""
        active = self.active_s
        if not self.calls or not active or active <= 0 or not self.cpus:
            return None
        return self.calls / active / self.cpus


def nodes(result: Mapping[str, Any] | None) -> list[NodeWork]:
    """A row per node the run saw (node_cpus) or that did work (node_work), by IP; [] for a
    result without node_work."""
    work = result.get("node_work") if result else None
    if not isinstance(work, Mapping) or not work:
        return []
    raw_cpus = result.get("node_cpus") if result else None
    cpus: dict[str, float] = {}
    if isinstance(raw_cpus, Mapping):
        cpus = {str(ip): float(c) for ip, c in raw_cpus.items() if finite(c)}
    total_calls = sum(_int(w.get("calls")) for w in work.values() if isinstance(w, Mapping))
    total_cpus = sum(cpus.values())
    out = []
    for ip in sorted(set(work) | set(cpus)):
        w = work.get(ip)
        w = w if isinstance(w, Mapping) else {}
        calls = _int(w.get("calls"))
        node_cpus = cpus.get(ip)
        out.append(
            NodeWork(
                ip=str(ip),
                cpus=node_cpus,
                workers=_int(w.get("workers")),
                calls=calls,
                busy_s=float(w["busy_s"]) if finite(w.get("busy_s")) else 0.0,
                first_start_s=_num(w.get("first_start_s")),
                last_end_s=_num(w.get("last_end_s")),
                work_share=calls / total_calls if total_calls else None,
                cpu_share=node_cpus / total_cpus if node_cpus is not None and total_cpus else None,
            )
        )
    return out


def lag(rows: Sequence[NodeWork]) -> tuple[NodeWork, float] | None:
    """The node that finished last and how long after every other working node had
    finished; None with fewer than two nodes that did work."""
    working = [r for r in rows if r.calls and r.last_end_s is not None]
    if len(working) < 2:
        return None
    working.sort(key=lambda r: r.last_end_s or 0.0)
    last, before = working[-1], working[-2]
    return last, float(last.last_end_s or 0.0) - float(before.last_end_s or 0.0)


def _pct(share: float | None) -> str:
    return "?%" if share is None else f"{share * 100:.0f}%"


def verdict(result: Mapping[str, Any] | None) -> str | None:
    """One line on the balance of a run, None when the result has no node_work or only one
    node ran (nothing to balance); "far" is measured against the result's wall_s."""
    rows = nodes(result)
    if len(rows) < 2:
        return None
    wall_s = _num(result.get("wall_s")) if result is not None else None
    idle = [r for r in rows if not r.calls and r.cpus]
    parts = []
    found = lag(rows)
    if found is not None:
        last, late = found
        far = max(LATE_S, LATE_SHARE * wall_s) if wall_s else LATE_S
        if late >= far:
            parts.append(
                f"node {last.ip} was busy {late:.1f} s after the others finished: its share of "
                f"the work was {_pct(last.work_share)} for {_pct(last.cpu_share)} of the CPUs"
            )
        else:
            parts.append(f"balanced: every node finished within {late:.1f} s of the others")
    for r in idle:
        parts.append(f"node {r.ip} did none of the work ({r.cpus:g} CPUs idle)")
    return "; ".join(parts) or None


def late_s(result: Mapping[str, Any] | None) -> float | None:
    """Seconds the last node worked after the others finished (None: nothing to compare)."""
    found = lag(nodes(result))
    return None if found is None else round(found[1], 3)


def _int(value: Any) -> int:
    return int(value) if finite(value) else 0


def _num(value: Any) -> float | None:
    return float(value) if finite(value) else None
