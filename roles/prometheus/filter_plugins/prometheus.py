"""Prometheus targets for raykit, built from the inventory (not from Ray's discovery file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The head's extra metrics endpoints: (exporter label, key in raykit_ports).
HEAD_ONLY = (("autoscaler", "autoscaler_metrics"), ("dashboard", "dashboard_metrics"))
ROLES = (("head", "ray_head"), ("worker", "ray_worker"))


def prometheus_targets(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    ports: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """file_sd target groups: every Ray node's metrics export port, and the head's autoscaler
    and dashboard metrics ports, one group per endpoint, labelled with `host` (the inventory
    name), `role` (head or worker) and `exporter` (node, autoscaler or dashboard).

    Addresses are each host's `raykit_node_address` (set by preflight); the order follows the
    inventory (head first), so the rendered file only changes when the inventory does.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for role, group in ROLES:
        for host in groups.get(group) or []:
            if host in seen:  # preflight refuses a host in both groups; never list it twice
                continue
            seen.add(host)
            address = (hostvars.get(host) or {}).get("raykit_node_address")
            if not isinstance(address, str) or not address:
                raise ValueError(
                    f"{host} has no raykit_node_address: run the monitoring play after "
                    "preflight in the same ansible-playbook run (site.yml does)"
                )
            endpoints = [("node", "metrics_export")]
            if role == "head":
                endpoints += list(HEAD_ONLY)
            for exporter, key in endpoints:
                out.append(
                    {
                        "targets": [f"{address}:{int(ports[key])}"],
                        "labels": {"host": str(host), "role": role, "exporter": exporter},
                    }
                )
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"raykit_prometheus_targets": prometheus_targets}
