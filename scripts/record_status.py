#!/usr/bin/env python3
"""Record what `raykit status` asks a live cluster, as a fixture for the unit tests.

    scripts/record_status.py -i INVENTORY NAME

saves `tests/fixtures/status/NAME.json`: the cluster's cluster.json (as the runner reads it),
Ray's state API answer (`/api/v0/nodes?detail=true`), each Prometheus query's answer (data or
error), and Prometheus' and Grafana's health. tests/unit/test_status.py evaluates them, as
recorded and with one thing broken at a time (a node dead, a target down, spilling, a full
disk, a version that drifted). The fixture in the repository came from a healthy 3-node
sandbox cluster (`raykit sandbox up`, `raykit up`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from raykit import status
from raykit.cluster import load

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("name")
    args = parser.parse_args()
    cluster = load(args.inventory)
    raw: dict = {}
    doc = status.collect(cluster, record=raw)
    if doc["code"] == status.UNREACHABLE:
        print(doc["verdict"], file=sys.stderr)
        return 2
    raw["access"] = cluster.access
    out = REPO / "tests" / "fixtures" / "status" / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    print(f"{out}: {doc['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
