"""The roles' contracts: defaults == argument specs, prefixes, pins, the port map, file modes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta").is_dir())

# Options declared `required: false` with no default on purpose: set per host in the inventory.
NO_DEFAULT_ON_PURPOSE = {("raykit", "raykit_node_ip")}
# What ansible-core's argument spec validation accepts as a `type`.
SPEC_TYPES = {
    "str",
    "int",
    "float",
    "bool",
    "list",
    "dict",
    "path",
    "raw",
    "bytes",
    "bits",
    "jsonarg",
    "json",
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def defaults_files(role: str) -> list[Path]:
    d = ROLES_DIR / role / "defaults"
    files = [d / "main.yml"] if (d / "main.yml").is_file() else []
    return [*files, *sorted((d / "main").glob("*.yml"))]


def defaults(role: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in defaults_files(role):
        doc = load(path) or {}
        assert isinstance(doc, dict), path
        twice = set(doc) & set(out)
        assert not twice, f"{path} sets {sorted(twice)} again"
        out.update(doc)
    return out


def specs(role: str) -> dict[str, Any]:
    return load(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]


# The entry point that documents a role's defaults: `main`, but raykit's is `variables` (it has
# no tasks; the playbooks check its variables once per run, not on every role entry).
DEFAULTS_ENTRY = {"raykit": "variables"}


def main_options(role: str) -> dict[str, Any]:
    return specs(role)[DEFAULTS_ENTRY.get(role, "main")].get("options") or {}


def walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair of every mapping in a YAML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def test_the_roles_are_found() -> None:
    assert {"raykit", "preflight", "python_runtime", "ray_venv", "ray_node", "version_gate"} <= set(
        ROLES
    )


# ---------------------------------------------------------------------------- defaults vs specs


@pytest.mark.parametrize("role", ROLES)
def test_defaults_equal_the_main_argument_spec(role: str) -> None:
    assert defaults_files(role), f"{role} has no defaults"
    keys = set(defaults(role))
    options = set(main_options(role))
    exempt = {name for r, name in NO_DEFAULT_ON_PURPOSE if r == role}
    assert keys - options == set(), f"{role}: defaults not in meta/argument_specs.yml"
    assert options - keys == exempt, f"{role}: options without a default"


def test_the_no_default_exceptions_are_exactly_the_declared_ones() -> None:
    found = set()
    for role in ROLES:
        keys = set(defaults(role))
        for name, option in main_options(role).items():
            if name not in keys:
                found.add((role, name))
                assert option.get("required") is False, (
                    f"{role}: {name} has no default and is not marked required: false"
                )
    assert found == NO_DEFAULT_ON_PURPOSE


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_description_and_a_type(role: str) -> None:
    entry_points = specs(role)
    assert DEFAULTS_ENTRY.get(role, "main") in entry_points
    for entry, spec in entry_points.items():
        for name, option in (spec.get("options") or {}).items():
            assert isinstance(option, dict), f"{role}/{entry}: {name}"
            assert str(option.get("description", "")).strip(), f"{role}/{entry}: {name}"
            assert option.get("type") in SPEC_TYPES, f"{role}/{entry}: {name}"
            if option["type"] == "list":
                assert "elements" in option, f"{role}/{entry}: {name} list without elements"


def test_raykit_variables_are_not_validated_on_every_role_entry() -> None:
    # Ansible validates a role's `main` entry each time the role (or a role depending on it)
    # is entered: raykit's spec must not be `main`, and every playbook checks it once instead.
    assert "main" not in specs("raykit")
    assert "raykit_check_vars:" in (ROLES_DIR / "raykit" / "tasks" / "check_vars.yml").read_text()
    cli = (REPO / "runner" / "raykit" / "cli.py").read_text()
    entries = sorted(set(re.findall(r'_run\("([^"]+\.yml)"', cli)))
    assert "site.yml" in entries and "playbooks/status.yml" in entries
    for entry in entries:
        text = (REPO / entry).read_text()
        first = text.split("\n- name:")[1]  # the first play
        assert "tasks_from: check_vars.yml" in first or "preflight.yml" in first, (
            f"{entry}: its first play does not check the raykit variables"
        )


@pytest.mark.parametrize("role", ROLES)
def test_every_default_starts_with_the_role_prefix(role: str) -> None:
    for name in defaults(role):
        assert name.startswith(f"{role}_"), f"{role}: {name}"
    for name in main_options(role):
        assert name.startswith(f"{role}_"), f"{role} spec: {name}"


@pytest.mark.parametrize("role", ROLES)
def test_no_default_is_latest(role: str) -> None:
    for path in defaults_files(role):
        for text in strings(load(path)):
            assert not re.search(r"(?i)\blatest\b", text), f"{path}: {text!r}"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_depends_on_raykit(role: str) -> None:
    meta = load(ROLES_DIR / role / "meta" / "main.yml")
    deps = [d["role"] if isinstance(d, dict) else d for d in meta.get("dependencies") or []]
    if role == "raykit":
        assert deps == []
    else:
        assert "raykit" in deps


# ---------------------------------------------------------------------------- pins


@pytest.fixture(scope="module")
def versions() -> dict[str, Any]:
    return load(ROLES_DIR / "raykit" / "defaults" / "main" / "versions.yml")


def test_the_pinned_python_has_a_sha256(versions: dict[str, Any]) -> None:
    version = versions["raykit_python_version"]
    assert isinstance(version, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert re.fullmatch(r"[0-9a-f]{64}", str(versions["raykit_python_source_sha256"][version]))


def test_the_pinned_ray_is_a_string_version(versions: dict[str, Any]) -> None:
    assert isinstance(versions["raykit_ray_version"], str)
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions["raykit_ray_version"])


def test_the_lock_pins_the_kits_ray_and_uv(versions: dict[str, Any]) -> None:
    files = ROLES_DIR / "ray_venv" / "files"
    lock = (files / "requirements.lock").read_text(encoding="utf-8")
    requirements_in = (files / "requirements.in").read_text(encoding="utf-8")
    ray = versions["raykit_ray_version"]
    # The same check as preflight's: exactly this version, not a longer one.
    assert re.search(rf"(?m)^ray=={re.escape(ray)}(?![.0-9a-z])", lock)
    assert re.search(rf"(?m)^ray\[default\]=={re.escape(ray)}\s*$", requirements_in)
    uv = re.search(r"(?m)^uv==(\S+)\s*$", requirements_in)
    assert uv, "requirements.in does not pin uv"
    assert re.search(rf"(?m)^uv=={re.escape(uv.group(1))}(?![.0-9a-z])", lock)
    assert len(re.findall(r"(?m)^uv==", lock)) == 1


# ---------------------------------------------------------------------------- the port map


@pytest.fixture(scope="module")
def ports() -> dict[str, Any]:
    return load(ROLES_DIR / "raykit" / "defaults" / "main" / "ports.yml")["raykit_ports"]


def test_every_port_is_an_int_in_range(ports: dict[str, Any]) -> None:
    assert len(ports) >= 5
    for name, port in ports.items():
        assert type(port) is int, f"{name}: {port!r}"
        assert 1 <= port <= 65535, f"{name}: {port}"


def test_no_port_is_used_twice(ports: dict[str, Any]) -> None:
    values = list(ports.values())
    dupes = {p for p in values if values.count(p) > 1}
    assert not dupes, {n: p for n, p in ports.items() if p in dupes}


def test_the_worker_range_is_clear_of_every_other_port(ports: dict[str, Any]) -> None:
    low, high = ports["worker_min"], ports["worker_max"]
    assert low < high
    inside = {
        n: p for n, p in ports.items() if n not in ("worker_min", "worker_max") and low <= p <= high
    }
    assert inside == {}


# ---------------------------------------------------------------------------- file modes


YAML_FILES = sorted([*ROLES_DIR.rglob("*.yml"), *(REPO / "playbooks").rglob("*.yml")])


def test_yaml_files_are_found() -> None:
    assert len(YAML_FILES) > 20


def test_every_mode_is_quoted() -> None:
    seen = 0
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for key, value in walk(doc):
                # async_status' `mode: cleanup|status` is not a file mode.
                if key != "mode" or value in ("cleanup", "status"):
                    continue
                seen += 1
                # An unquoted 0644 is the int 420 to YAML 1.1 (and 644 to YAML 1.2).
                assert isinstance(value, str), f"{path.relative_to(REPO)}: mode: {value!r}"
                # Octal with its leading 0, symbolic (u=rw,g=r), or a template.
                assert re.fullmatch(r"0[0-7]{3}|[ugoa]*[-+=][rwxXst]*(,.*)?|\{\{.*\}\}", value), (
                    f"{path.relative_to(REPO)}: mode: {value!r}"
                )
    assert seen >= 10  # the walk does find the modes


def test_the_mode_check_catches_an_unquoted_mode() -> None:
    doc = yaml.safe_load("- ansible.builtin.file: {path: /x, mode: 0644}\n- {mode: '0644'}\n")
    modes = [v for k, v in walk(doc) if k == "mode"]
    assert modes == [0o644, "0644"]
