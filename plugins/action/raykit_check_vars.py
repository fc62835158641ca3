"""raykit_check_vars: every public raykit variable of this host checked, on the control node,
before any host is touched.

The roles' ``meta/argument_specs.yml`` are the single source of types and choices (the plays
enter the roles through ``tasks_from``, which Ansible does not validate); on top of them, what a
spec cannot say: the port map (complete, whole numbers in 1024-65535, no two equal, the worker
range clear of the fixed ports), CPU and memory figures, ``X.Y.Z`` versions, sha256 pins. Each
problem names the variable, its value, what is allowed and where the value was set (``-e`` or
the inventory). Changes nothing; fails listing every problem at once.

    - name: Every raykit variable has a valid value
      raykit_check_vars:
        roles_dir: "{{ playbook_dir }}/../roles"
        hosts: "{{ groups['all'] }}"
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

# Full versions: major.minor.micro, with the pre-release or build suffixes each project uses
# (CPython 3.14.0rc1, Ray 2.61.0rc0, a Prometheus 2.42.0+debian-repack).
VERSION_RES = {
    "raykit_python_version": re.compile(r"^\d+\.\d+\.\d+((a|b|rc)\d+)?$"),
    "raykit_ray_version": re.compile(r"^\d+\.\d+\.\d+(rc\d+)?$"),
    "raykit_prometheus_version": re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$"),
    "raykit_grafana_version": re.compile(r"^\d+\.\d+\.\d+$"),
}
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Ray refuses an object store under 75 MiB (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES).
OBJECT_STORE_MIN = 75 * 1024 * 1024
PORT_MIN = 1024  # Ray runs as an unprivileged user: no port below 1024
PORT_MAX = 65535
POSITIVE_INTS = (
    "ray_node_start_timeout",
    "prometheus_start_timeout",
    "grafana_start_timeout",
    "preflight_min_free_gb",
    "raykit_tls_days",
    "ray_node_gcs_reconnect_timeout",
    "ray_node_liveness_check_interval",
)
NON_NEGATIVE_INTS = ("ray_node_restart_sec", "python_runtime_build_jobs")


def load_specs(roles_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every option of every role's argument specs (all entry points), by variable name."""
    options: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for entry in (doc.get("argument_specs") or {}).values():
            for name, spec in ((entry or {}).get("options") or {}).items():
                options.setdefault(name, dict(spec))
    return options


def default_ports(roles_dir: str | Path) -> dict[str, int]:
    data = yaml.safe_load((Path(roles_dir) / "raykit/defaults/main/ports.yml").read_text())
    return dict(data["raykit_ports"])


def _spec_for_validator(spec: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("type", "choices", "elements", "options")
    return {k: v for k, v in spec.items() if k in keep}


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value) is not None


def _is_network(value: Any) -> bool:
    """An address or a CIDR network (host bits clear), as nftables takes it."""
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return False
    return isinstance(value, str)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_ports(ports: Any, defaults: Mapping[str, int]) -> list[str]:
    """What is wrong with a raykit_ports value (empty list: nothing)."""
    if not isinstance(ports, Mapping):
        return [f"must be a map of port names to numbers (like {sorted(defaults)[:3]}...)"]
    problems = []
    missing = [k for k in defaults if k not in ports]
    unknown = [k for k in ports if k not in defaults]
    if missing:
        problems.append(
            f"misses {', '.join(missing)}: raykit_ports replaces the whole map, so give every "
            "port (copy roles/raykit/defaults/main/ports.yml and change what you need)"
        )
    if unknown:
        problems.append(f"has unknown port name(s) {', '.join(map(str, unknown))}")
    numbers: dict[str, int] = {}
    for key, value in ports.items():
        if not _is_int(value):
            problems.append(f"{key}={value!r} is not a whole number")
            continue
        number = int(value)
        if not PORT_MIN <= number <= PORT_MAX:
            problems.append(
                f"{key}={number} is outside {PORT_MIN}-{PORT_MAX} (Ray runs as an unprivileged "
                "user and cannot bind a port below 1024)"
            )
        numbers[str(key)] = number
    fixed = {k: v for k, v in numbers.items() if k not in ("worker_min", "worker_max")}
    by_port: dict[int, list[str]] = {}
    for key, number in fixed.items():
        by_port.setdefault(number, []).append(key)
    for number, keys in sorted(by_port.items()):
        if len(keys) > 1:
            problems.append(
                f"{' and '.join(sorted(keys))} are both {number}: every port must differ"
            )
    low, high = numbers.get("worker_min"), numbers.get("worker_max")
    if low is not None and high is not None:
        if low > high:
            problems.append(f"worker_min={low} is above worker_max={high}")
        inside = [f"{k}={v}" for k, v in fixed.items() if low <= v <= high]
        if inside:
            problems.append(
                f"the worker range {low}-{high} holds {', '.join(inside)}: move the range or "
                "the port"
            )
    return problems


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every non-map value in nested maps: a pin per version per arch."""
    if not isinstance(value, Mapping):
        return [(path, value)]
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        out += _leaves(item, f"{path}.{key}" if path else str(key))
    return out


def check_value(name: str, value: Any, spec: Mapping[str, Any], ports: Mapping[str, int]) -> str:
    """What is wrong with one variable's value ("" when nothing)."""
    result = ArgumentSpecValidator({name: _spec_for_validator(spec)}).validate({name: value})
    if result.errors.errors:
        # Ansible's own words, e.g. "value of x must be one of: a, b, got: c".
        return "; ".join(str(e) for e in result.errors.errors)
    value = result.validated_parameters.get(name, value)
    if name == "raykit_ports":
        return "; ".join(check_ports(value, ports))
    if name in VERSION_RES and not VERSION_RES[name].match(str(value)):
        return "must be a full version, major.minor.micro (e.g. 3.13.5)"
    if name == "ray_node_num_cpus" and not _empty(value) and not _is_int(value):
        return "must be a whole number of CPUs >= 0, or empty to let Ray count them"
    if (
        name == "ray_node_object_store_memory"
        and not _empty(value)
        and (not _is_int(value) or int(value) < OBJECT_STORE_MIN)
    ):
        return (
            f"must be a number of bytes >= {OBJECT_STORE_MIN} (75 MiB, Ray's minimum), or "
            "empty to let Ray choose"
        )
    if name in POSITIVE_INTS and int(value) < 1:
        return "must be at least 1"
    if name in NON_NEGATIVE_INTS and int(value) < 0:
        return "must be 0 or more"
    if name in ("raykit_python_source_sha256", "raykit_prometheus_sha256", "raykit_grafana_sha256"):
        bad = [f"{k}: {v!r}" for k, v in _leaves(value) if v != "" and not SHA256_RE.match(str(v))]
        if bad:
            return f"holds values that are not sha256 hex digests: {', '.join(bad)}"
    if name == "raykit_trusted_addresses":
        bad = [repr(v) for v in value if not _is_network(v)]
        if bad:
            return (
                f"holds {', '.join(bad)}: each must be an IPv4 or IPv6 address or a network in "
                "CIDR form (e.g. 192.0.2.10 or 192.0.2.0/24)"
            )
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return ""


def allowed(spec: Mapping[str, Any]) -> str:
    if spec.get("choices"):
        return "one of " + ", ".join(map(str, spec["choices"]))
    kind = spec.get("type", "str")
    names = {"raw": "see the role's README", "path": "a path", "dict": "a map"}
    return names.get(kind, f"a {kind}")


def problems(
    values: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    ports: Mapping[str, int],
    source: Any,
) -> list[dict[str, str]]:
    """One record per variable of `values` (declared in `specs`) whose value is wrong."""
    out = []
    for name in sorted(values):
        if name not in specs:
            continue
        why = check_value(name, values[name], specs[name], ports)
        if why:
            out.append(
                {
                    "name": name,
                    "value": repr(values[name]),
                    "problem": why,
                    "allowed": allowed(specs[name]),
                    "source": source(name),
                }
            )
    return out


def message(found: Mapping[str, list[Mapping[str, str]]], total_hosts: int) -> str:
    """The failure text: each distinct problem once, with the hosts it was found on."""
    where: dict[tuple[str, str, str, str], list[str]] = {}
    for host, items in found.items():
        for p in items:
            where.setdefault((p["name"], p["value"], p["source"], p["problem"]), []).append(host)
    lines = ["Invalid value(s); nothing has been changed on any host:"]
    for (name, value, source, problem), hosts in where.items():
        on = (
            f"all {total_hosts} hosts"
            if len(hosts) == total_hosts and total_hosts > 1
            else ", ".join(hosts)
        )
        lines.append(f"  {name} = {value} (set {source}; {on}): {problem}")
    lines.append(
        "Fix: correct each value where it was set (every variable is described in its role's "
        "README and meta/argument_specs.yml), then run again."
    )
    return "\n".join(lines)


class ActionModule(ActionBase):
    """Checks the variables the inventory and -e give each of `hosts` (role defaults are the
    kit's own and tested); runs on the control node, before any role of the play."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        roles_dir = self._task.args.get("roles_dir")
        hosts = list(self._task.args.get("hosts") or [])
        if not roles_dir:
            return {**result, "failed": True, "msg": "raykit_check_vars needs roles_dir"}
        specs = load_specs(roles_dir)
        ports = default_ports(roles_dir)
        manager = self._task.get_variable_manager()
        extra: Mapping[str, Any] = (manager.extra_vars if manager is not None else None) or {}
        hostvars = task_vars.get("hostvars") or {}

        def source(name: str) -> str:
            return "with -e" if name in extra else "in the inventory"

        found: dict[str, list[Mapping[str, str]]] = {}
        checked = 0
        for host in hosts:
            hv = hostvars[host]
            values: dict[str, Any] = {}
            broken: list[Mapping[str, str]] = []
            for name in specs:
                if name not in hv:
                    continue
                try:
                    values[name] = hv[name]  # templated, as the roles would see it
                except Exception as exc:  # any template error is the user's to see
                    broken.append(
                        {
                            "name": name,
                            "value": "(a template)",
                            "source": source(name),
                            "problem": f"cannot be evaluated: {exc}",
                            "allowed": allowed(specs[name]),
                        }
                    )
            checked += len(values)
            items = broken + problems(values, specs, ports, source)
            if items:
                found[host] = items
        if found:
            return {
                **result,
                "failed": True,
                "msg": message(found, len(hosts)),
            }
        return {
            **result,
            "changed": False,
            "msg": f"{checked} values of raykit variables on {len(hosts)} host(s): all valid",
        }
