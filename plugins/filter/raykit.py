"""Filters for raykit's playbooks: typo detection in inventories and the version-gate table."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from packaging.version import Version

# Variables under these prefixes belong to raykit; any other name under them is a typo.
RAYKIT_PREFIXES = (
    "raykit_",
    "python_runtime_",
    "ray_venv_",
    "ray_node_",
    "version_gate_",
    "preflight_",
    "prometheus_",
    "grafana_",
)


def unknown_vars(
    names: Iterable[str], known: Iterable[str], prefixes: Sequence[str] = RAYKIT_PREFIXES
) -> list[dict[str, str]]:
    """Names under raykit's prefixes that no role declares, each with the closest known name."""
    known_set = set(known)
    out = []
    for name in sorted(set(names)):
        if not name.startswith(tuple(prefixes)) or name in known_set:
            continue
        close = difflib.get_close_matches(name, sorted(known_set), n=1, cutoff=0.6)
        out.append({"name": name, "suggestion": close[0] if close else ""})
    return out


def argument_spec_options(specs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every option name declared by a list of parsed meta/argument_specs.yml documents."""
    names: set[str] = set()
    for doc in specs:
        for entry in (doc or {}).get("argument_specs", {}).values():
            names.update((entry or {}).get("options", {}) or {})
    return sorted(names)


def declared_vars(roles_dir: str) -> list[str]:
    """Every variable declared by the meta/argument_specs.yml of the roles under roles_dir."""
    import pathlib

    import yaml

    docs = [
        yaml.safe_load(p.read_text())
        for p in sorted(pathlib.Path(roles_dir).glob("*/meta/argument_specs.yml"))
    ]
    return argument_spec_options(docs)


def version_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    expected: Mapping[str, Any] | None = None,
    compare_unpinned: bool = True,
) -> str:
    """A plain-text table, one row per host, with a '!' on every cell that is off.

    rows: [{"host": ..., <column>: value, ...}]; expected: {<column>: value} (the pins). A
    column without a pin is compared with the first row (the head), unless
    compare_unpinned is false: then it is only shown.
    """
    expected = expected or {}
    header = ["host", *columns]
    reference = {
        c: (
            expected.get(c)
            if expected.get(c) not in (None, "")
            else (rows[0].get(c) if rows else None)
        )
        for c in columns
    }
    body = []
    for row in rows:
        cells = [str(row.get("host", ""))]
        for col in columns:
            value = row.get(col)
            text = "-" if value in (None, "") else str(value)
            pinned = expected.get(col) not in (None, "")
            if (pinned or compare_unpinned) and (
                str(value) != str(reference[col]) or value in (None, "")
            ):
                text += " !"
            cells.append(text)
        body.append(cells)
    if any(expected.get(c) not in (None, "") for c in columns):
        body.append(["(pinned)", *[str(expected.get(c) or "-") for c in columns]])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([fmt(header), line, *(fmt(r) for r in body)])


def mismatched_columns(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    expected: Mapping[str, Any] | None = None,
) -> list[str]:
    """Columns whose values differ between rows, are missing on a host, or differ from
    `expected` where that is given (the same cells `version_table` flags)."""
    expected = expected or {}
    bad = []
    for col in columns:
        values = {str(r.get(col)) for r in rows}
        missing = any(r.get(col) in (None, "") for r in rows)
        want = expected.get(col)
        if missing or len(values) > 1 or (want not in (None, "") and values != {str(want)}):
            bad.append(col)
    return bad


def _version_key(text: str) -> Version:
    """A dotted version as PEP 440 orders it (the `packaging` that ansible-core depends on):
    numeric, 2.4 < 2.36, and 2.4 == 2.4.0."""
    return Version(str(text))


def oldest(hosts: Sequence[str], hostvars: Mapping[str, Any], var: str) -> str:
    """The host whose `var` is the lowest version; the first one in order on a tie."""
    return min(hosts, key=lambda h: _version_key(hostvars[h][var]))


def oldest_version(versions: Sequence[str]) -> str:
    """The lowest of a list of version strings."""
    return min(versions, key=_version_key)


def version_le(a: str, b: str) -> bool:
    """Whether version string a <= b, component-wise (2.4 < 2.36)."""
    return _version_key(a) <= _version_key(b)


def env_file(text: str) -> dict[str, str]:
    """Parse a systemd-style environment file (KEY=value lines; # comments) into a dict."""
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def usable_build(paths: Iterable[str], glibc: str) -> str:
    """Of cached interpreter builds named ...-glibcX.Y.tar.gz, the newest whose glibc <= `glibc`.

    A build made against glibc X runs on X and newer. Returns "" when none fits.
    """
    import re

    best, best_key = "", None
    for path in paths:
        m = re.search(r"-glibc([0-9.]+)\.tar\.gz$", str(path))
        if not m or not version_le(m.group(1), glibc):
            continue
        key = _version_key(m.group(1))
        if best_key is None or key > best_key:
            best, best_key = str(path), key
    return best


def read_if_exists(path: str) -> str:
    """A small text file's content, stripped; "" when it does not exist (control node)."""
    import pathlib

    try:
        return pathlib.Path(path).read_text().strip()
    except FileNotFoundError:
        return ""


def venv_archive_ok(path: str) -> bool:
    """True when a cached venv archive is there and hashes to the sha256 its record
    (`<path>.json`, written when it was packed) holds (control node)."""
    import json

    record = read_if_exists(path + ".json")
    try:
        data = json.loads(record) if record else {}
    except ValueError:
        return False
    expected = data.get("sha256", "") if isinstance(data, dict) else ""
    return bool(expected) and file_sha256(path) == expected


def cluster_nodes(
    head: Sequence[str], workers: Sequence[str], hostvars: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Every Ray node as {name, node_ip, role}, head first: the runner's view of the cluster."""
    return [
        {"name": name, "node_ip": str(hostvars[name]["raykit_node_address"]), "role": role}
        for role, names in (("head", head), ("worker", workers))
        for name in names
    ]


def venvs_to_prune(lines: Iterable[str], keep: int) -> list[str]:
    """The venvs to remove, from ray_venv's prune listing: ``link TARGET`` lines (current,
    previous: always kept) and ``venv MTIME PATH`` lines. Of the others, the newest are kept
    until ``keep`` venvs remain; the rest are returned, newest first."""
    kept: list[str] = []
    venvs: list[tuple[float, str]] = []
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "link" and rest and rest not in kept:
            kept.append(rest)
        elif kind == "venv":
            mtime, _, path = rest.partition(" ")
            venvs.append((float(mtime), path))
    others = [path for _, path in sorted(venvs, reverse=True) if path not in kept]
    return others[max(int(keep) - len(kept), 0) :]


def file_sha256(path: str) -> str:
    """The sha256 of a file on the control node, or "" when there is none (read in-process:
    a preflight check of a cached archive costs no module run)."""
    import hashlib
    import pathlib

    p = pathlib.Path(path)
    if not p.is_file():
        return ""
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_file_in_state(path: str, content: str, mode: str) -> bool:
    """Whether a control-node file exists as a regular file with exactly this text and this
    octal mode (so that writing it with copy would change nothing)."""
    import pathlib
    import stat

    p = pathlib.Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    if stat.S_IMODE(p.stat().st_mode) != int(str(mode), 8):
        return False
    return p.read_bytes() == content.encode()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "raykit_unknown_vars": unknown_vars,
            "raykit_declared_vars": declared_vars,
            "raykit_version_table": version_table,
            "raykit_mismatched_columns": mismatched_columns,
            "raykit_oldest": oldest,
            "raykit_oldest_version": oldest_version,
            "raykit_env_file": env_file,
            "raykit_usable_build": usable_build,
            "raykit_cluster_nodes": cluster_nodes,
            "raykit_read_if_exists": read_if_exists,
            "raykit_venvs_to_prune": venvs_to_prune,
            "raykit_file_sha256": file_sha256,
            "raykit_venv_archive_ok": venv_archive_ok,
            "raykit_local_file_in_state": local_file_in_state,
        }
