"""Filters of the grafana role."""

from __future__ import annotations

import copy
from typing import Any


def select_datasource(dashboard: dict[str, Any], name: str, uid: str) -> dict[str, Any]:
    """Ray's generated dashboard with its datasource variable(s) set to the provisioned one.

    Ray 2.60 writes every panel's and every query variable's datasource as ``${datasource}``,
    a template variable of type ``datasource`` (query ``prometheus``) with no current value,
    which Grafana fills with the default Prometheus datasource. Setting the current value to
    the provisioned datasource makes the dashboards independent of which datasource happens to
    be the default. Nothing else changes; the input is not modified.
    """
    if not isinstance(dashboard, dict):
        raise TypeError(f"a Grafana dashboard is a JSON object, not {type(dashboard).__name__}")
    out = copy.deepcopy(dashboard)
    for variable in (out.get("templating") or {}).get("list") or []:
        if variable.get("type") == "datasource" and variable.get("query") == "prometheus":
            variable["current"] = {"selected": True, "text": name, "value": uid}
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"grafana_select_datasource": select_datasource}
