"""The filter plugin plugins/filter/raykit.py: typo detection, the version-gate table, versions."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

from support import load_by_path

REPO = Path(__file__).resolve().parents[2]


f = load_by_path(REPO / "plugins" / "filter" / "raykit.py", "raykit_filter_plugin")


def cells(table: str) -> dict[str, dict[str, str]]:
    """{host: {column: cell text}} of a version_table, sliced at the widths of its dash line."""
    header, dashes, *body = table.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    names = [header[a:b].strip() for a, b in spans]

    def split(line: str) -> list[str]:
        return [
            line[a : (spans[i + 1][0] if i + 1 < len(spans) else None)].strip()
            for i, (a, _) in enumerate(spans)
        ]

    out = {}
    for line in body:
        row = split(line)
        out[row[0]] = dict(zip(names[1:], row[1:], strict=True))
    return out


# ---------------------------------------------------------------------------- FilterModule


def test_filter_module_exposes_every_filter_under_the_raykit_prefix() -> None:
    filters = f.FilterModule().filters()
    assert set(filters) == {
        "raykit_unknown_vars",
        "raykit_declared_vars",
        "raykit_version_table",
        "raykit_mismatched_columns",
        "raykit_oldest",
        "raykit_oldest_version",
        "raykit_env_file",
        "raykit_usable_build",
        "raykit_cluster_nodes",
        "raykit_read_if_exists",
        "raykit_venvs_to_prune",
        "raykit_file_sha256",
        "raykit_venv_archive_ok",
        "raykit_local_file_in_state",
    }
    assert filters["raykit_oldest_version"] is f.oldest_version
    assert all(callable(fn) for fn in filters.values())


def test_every_registered_filter_is_used_by_a_role_or_playbook() -> None:
    texts = [
        path.read_text()
        for top in ("roles", "playbooks", "molecule")
        for path in (REPO / top).rglob("*")
        if path.suffix in (".yml", ".yaml", ".j2") and path.is_file()
    ]
    unused = [name for name in f.FilterModule().filters() if not any(name in t for t in texts)]
    assert not unused, f"registered but used nowhere: {unused}"


def test_read_if_exists(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("abc\n")
    assert f.read_if_exists(str(tmp_path / "pin")) == "abc"
    assert f.read_if_exists(str(tmp_path / "none")) == ""


# ---------------------------------------------------------------------------- declared_vars


@pytest.fixture(scope="module")
def known() -> list[str]:
    return f.declared_vars(str(REPO / "roles"))


def test_declared_vars_on_the_real_roles(known: list[str]) -> None:
    assert known == sorted(set(known))
    for name in (
        "raykit_python_version",
        "raykit_ray_version",
        "raykit_ports",
        "raykit_node_ip",  # declared although it has no default
        "ray_node_num_cpus",
        "ray_venv_compile_bytecode",
        "python_runtime_build_jobs",
        "preflight_min_free_gb",
        "version_gate_checks",
    ):
        assert name in known
    # Only variables, never entry point names or spec keys.
    assert "main" not in known
    assert "artifact" not in known
    assert "description" not in known


def test_declared_vars_reads_every_entry_point_of_every_role(tmp_path: Path) -> None:
    (tmp_path / "alpha" / "meta").mkdir(parents=True)
    (tmp_path / "alpha" / "meta" / "argument_specs.yml").write_text(
        textwrap.dedent(
            """\
            ---
            argument_specs:
              main:
                options:
                  alpha_one: {type: int, description: one}
                  alpha_two: {type: str, description: two}
              extra:
                options:
                  alpha_three: {type: bool, description: three}
              empty:
                options: {}
              bare:
                short_description: no options key at all
            """
        )
    )
    (tmp_path / "beta" / "meta").mkdir(parents=True)
    (tmp_path / "beta" / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      beta_x: {type: str, description: x}\n"
    )
    # A role without specs, and a stray file, are ignored.
    (tmp_path / "gamma" / "defaults").mkdir(parents=True)
    (tmp_path / "README.md").write_text("not a role\n")

    assert f.declared_vars(str(tmp_path)) == ["alpha_one", "alpha_three", "alpha_two", "beta_x"]


def test_declared_vars_of_an_empty_dir(tmp_path: Path) -> None:
    assert f.declared_vars(str(tmp_path)) == []


def test_argument_spec_options_tolerates_empty_documents() -> None:
    docs = [
        None,
        {},
        {"argument_specs": {"main": None}},
        {"argument_specs": {"main": {}}},
        {"argument_specs": {"main": {"options": {"b_x": {}, "a_y": {}}}}},
    ]
    assert f.argument_spec_options(docs) == ["a_y", "b_x"]


# ---------------------------------------------------------------------------- unknown_vars


def test_unknown_vars_suggests_the_closest_known_name(known: list[str]) -> None:
    names = [
        "raykit_pyhton_version",
        "ray_node_num_cpu",
        "version_gate_check",
        "ray_venv_compile_bytecod",
    ]
    assert f.unknown_vars(names, known) == [
        {"name": "ray_node_num_cpu", "suggestion": "ray_node_num_cpus"},
        {"name": "ray_venv_compile_bytecod", "suggestion": "ray_venv_compile_bytecode"},
        {"name": "raykit_pyhton_version", "suggestion": "raykit_python_version"},
        {"name": "version_gate_check", "suggestion": "version_gate_checks"},
    ]


def test_unknown_vars_without_a_close_name_has_an_empty_suggestion(known: list[str]) -> None:
    assert f.unknown_vars(["raykit_zzzzzzzzzzzzzzzzzzzzzzzz"], known) == [
        {"name": "raykit_zzzzzzzzzzzzzzzzzzzzzzzz", "suggestion": ""}
    ]
    # prometheus_/grafana_ are reserved for raykit but no role declares one yet.
    assert f.unknown_vars(["grafana_admin_password"], known)[0]["name"] == "grafana_admin_password"


def test_unknown_vars_ignores_known_names_and_names_outside_the_prefixes(known: list[str]) -> None:
    names = [
        *known,
        "ansible_host",
        "ansible_user",
        "inventory_hostname",
        "group_names",
        "ray_address",  # close to ray_ prefixes, but not under one
        "raykit",  # the prefix needs its underscore
        "my_raykit_python_version",
    ]
    assert f.unknown_vars(names, known) == []


def test_unknown_vars_reports_each_name_once_in_order() -> None:
    out = f.unknown_vars(["raykit_b", "raykit_a", "raykit_b"], ["raykit_x"])
    assert [o["name"] for o in out] == ["raykit_a", "raykit_b"]


def test_unknown_vars_with_custom_prefixes() -> None:
    out = f.unknown_vars(["lab_cpus", "raykit_typo"], ["lab_cpu"], prefixes=["lab_"])
    assert out == [{"name": "lab_cpus", "suggestion": "lab_cpu"}]


# ---------------------------------------------------------------------------- version_table


ROWS = [
    {"host": "head", "python": "3.13.5", "ray": "2.60.0", "lock": "abc"},
    {"host": "w1", "python": "3.13.4", "ray": "2.60.0", "lock": "abc"},
    {"host": "w2", "python": "3.13.5", "ray": "2.59.0", "lock": "abc"},
]


def test_version_table_pinned_column_flags_the_differing_cell_and_shows_the_pin() -> None:
    table = f.version_table(ROWS, ["python"], {"python": "3.13.5"})
    t = cells(table)
    assert table.splitlines()[0].split() == ["host", "python"]
    assert t["head"]["python"] == "3.13.5"
    assert t["w1"]["python"] == "3.13.4 !"
    assert t["w2"]["python"] == "3.13.5"
    assert t["(pinned)"]["python"] == "3.13.5"
    assert list(t) == ["head", "w1", "w2", "(pinned)"]


def test_version_table_pin_wins_over_the_head() -> None:
    # The head itself is off the pin: it, not the agreeing workers, gets the '!'.
    rows = [{"host": "head", "ray": "2.59.0"}, {"host": "w1", "ray": "2.60.0"}]
    t = cells(f.version_table(rows, ["ray"], {"ray": "2.60.0"}))
    assert t["head"]["ray"] == "2.59.0 !"
    assert t["w1"]["ray"] == "2.60.0"


def test_version_table_unpinned_column_is_compared_with_the_first_row() -> None:
    t = cells(f.version_table(ROWS, ["python", "ray", "lock"], {"python": "3.13.5", "ray": ""}))
    assert t["head"] == {"python": "3.13.5", "ray": "2.60.0", "lock": "abc"}
    assert t["w1"] == {"python": "3.13.4 !", "ray": "2.60.0", "lock": "abc"}
    assert t["w2"] == {"python": "3.13.5", "ray": "2.59.0 !", "lock": "abc"}
    # Only python is pinned; the others show '-' in the (pinned) row.
    assert t["(pinned)"] == {"python": "3.13.5", "ray": "-", "lock": "-"}


def test_version_table_without_pins_has_no_pinned_row() -> None:
    table = f.version_table(ROWS, ["python", "ray"])
    assert "(pinned)" not in table
    assert f.version_table(ROWS, ["python", "ray"], {"python": None, "ray": ""}) == table
    t = cells(table)
    assert t["w1"]["python"] == "3.13.4 !"
    assert t["w2"]["ray"] == "2.59.0 !"


def test_version_table_missing_values_show_as_dash_and_are_flagged() -> None:
    rows = [
        {"host": "head", "python": "3.13.5", "ray": "2.60.0"},
        {"host": "w1", "python": None, "ray": ""},
        {"host": "w2"},
    ]
    t = cells(f.version_table(rows, ["python", "ray"], {"python": "3.13.5"}))
    for host in ("w1", "w2"):
        assert t[host] == {"python": "- !", "ray": "- !"}
    assert t["head"] == {"python": "3.13.5", "ray": "2.60.0"}


def test_version_table_missing_everywhere_is_still_flagged() -> None:
    t = cells(f.version_table([{"host": "a"}, {"host": "b"}], ["ray"]))
    assert t == {"a": {"ray": "- !"}, "b": {"ray": "- !"}}


def test_version_table_compares_as_text() -> None:
    rows = [{"host": "a", "n": 2}, {"host": "b", "n": "2"}]
    assert cells(f.version_table(rows, ["n"], {"n": "2"}))["a"]["n"] == "2"


def test_version_table_columns_are_aligned() -> None:
    rows = [{"host": "a-very-long-host-name", "python": "3.13.5"}, {"host": "b", "python": "3.1"}]
    lines = f.version_table(rows, ["python"]).splitlines()
    column = lines[1].index("  ") + 2  # where the second column starts
    assert len(lines[1].split()) == 2
    assert all(line[column - 2 : column] == "  " for line in lines)
    assert {line[column:].split()[0] for line in lines[2:]} == {"3.13.5", "3.1"}
    assert all(line == line.rstrip() for line in lines)


def test_version_table_without_rows() -> None:
    assert f.version_table([], ["python"]).splitlines()[0].split() == ["host", "python"]
    assert "(pinned)" in f.version_table([], ["python"], {"python": "3.13.5"})


# ---------------------------------------------------------------------------- mismatched_columns


def test_mismatched_columns_between_rows() -> None:
    assert f.mismatched_columns(ROWS, ["python", "ray", "lock"]) == ["python", "ray"]


def test_mismatched_columns_against_the_pins() -> None:
    rows = [{"host": h, "python": "3.13.4", "ray": "2.60.0"} for h in ("a", "b")]
    # The hosts agree with each other but not with the python pin.
    assert f.mismatched_columns(rows, ["python", "ray"], {"python": "3.13.5", "ray": "2.60.0"}) == [
        "python"
    ]
    # An empty pin means "compare the hosts with each other only".
    assert f.mismatched_columns(rows, ["python", "ray"], {"python": "", "ray": None}) == []


def test_mismatched_columns_when_all_agree() -> None:
    rows = [{"host": h, "python": "3.13.5", "ray": "2.60.0"} for h in ("a", "b", "c")]
    assert f.mismatched_columns(rows, ["python", "ray"], {"python": "3.13.5"}) == []


def test_mismatched_columns_missing_on_some_hosts() -> None:
    rows = [{"host": "a", "ray": "2.60.0"}, {"host": "b", "ray": None}, {"host": "c"}]
    assert f.mismatched_columns(rows, ["ray"]) == ["ray"]
    assert f.mismatched_columns([{"host": "a"}], ["ray"], {"ray": "2.60.0"}) == ["ray"]


def test_mismatched_columns_keeps_the_column_order() -> None:
    rows = [{"host": "a", "x": 1, "y": 1}, {"host": "b", "x": 2, "y": 2}]
    assert f.mismatched_columns(rows, ["y", "x"]) == ["y", "x"]


# ---------------------------------------------------------------------------- versions


def test_version_le_is_numeric_not_lexicographic() -> None:
    assert f.version_le("2.4", "2.36")
    assert not f.version_le("2.36", "2.4")
    assert f.version_le("2.36", "2.36")
    assert f.version_le("3.9.1", "3.13.0")
    assert not f.version_le("3.13.10", "3.13.9")


def test_oldest_version() -> None:
    assert f.oldest_version(["2.36", "2.4", "2.31"]) == "2.4"
    assert f.oldest_version(["2.41", "2.36", "2.36"]) == "2.36"
    assert f.oldest_version(["2.31"]) == "2.31"


def test_oldest_host_by_a_version_var() -> None:
    hostvars = {
        "head": {"raykit_glibc_version": "2.41"},
        "w1": {"raykit_glibc_version": "2.36"},
        "w2": {"raykit_glibc_version": "2.4"},
        "w3": {"raykit_glibc_version": "2.36"},
    }
    assert f.oldest(["head", "w1", "w2", "w3"], hostvars, "raykit_glibc_version") == "w2"
    # A tie goes to the first host in order.
    assert f.oldest(["head", "w3", "w1"], hostvars, "raykit_glibc_version") == "w3"
    assert f.oldest(["head", "w1", "w3"], hostvars, "raykit_glibc_version") == "w1"
    # Only the listed hosts count.
    assert f.oldest(["head"], hostvars, "raykit_glibc_version") == "head"


# ---------------------------------------------------------------------------- usable_build


CACHE = "/home/u/.cache/raykit/python"
BUILDS = [
    f"{CACHE}/cpython-3.13.5-x86_64-glibc2.31.tar.gz",
    f"{CACHE}/cpython-3.13.5-x86_64-glibc2.36.tar.gz",
    f"{CACHE}/cpython-3.13.5-x86_64-glibc2.41.tar.gz",
    f"{CACHE}/cpython-3.13.5-x86_64-glibc2.4.tar.gz",
]


@pytest.mark.parametrize(
    ("glibc", "expected"),
    [
        ("2.36", "glibc2.36"),  # an exact match
        ("2.40", "glibc2.36"),  # the newest one not newer than the cluster's oldest
        ("2.35", "glibc2.31"),
        ("2.41", "glibc2.41"),
        ("2.99", "glibc2.41"),
        ("2.30", "glibc2.4"),  # 2.4 < 2.30: numeric
        ("2.3", ""),  # nothing is old enough
    ],
)
def test_usable_build(glibc: str, expected: str) -> None:
    got = f.usable_build(BUILDS, glibc)
    assert got == (f"{CACHE}/cpython-3.13.5-x86_64-{expected}.tar.gz" if expected else "")
    assert f.usable_build(list(reversed(BUILDS)), glibc) == got


def test_usable_build_ignores_other_names() -> None:
    paths = [
        f"{CACHE}/notes.txt",
        f"{CACHE}/cpython-3.13.5-x86_64-glibc2.31.tar.xz",
        f"{CACHE}/cpython-3.13.5-x86_64-glibc2.31.tar.gz.part",
        f"{CACHE}/cpython-3.13.5-x86_64.tar.gz",
        f"{CACHE}/cpython-3.13.5-x86_64-glibc.tar.gz",
    ]
    assert f.usable_build(paths, "2.41") == ""
    assert f.usable_build([], "2.41") == ""
    assert f.usable_build([*paths, BUILDS[0]], "2.41") == BUILDS[0]


def test_usable_build_accepts_path_objects() -> None:
    assert f.usable_build([Path(BUILDS[1])], "2.36") == BUILDS[1]


# ---------------------------------------------------------------------------- env_file


def test_env_file() -> None:
    text = "\n".join(
        [
            "# Ansible managed",
            "# RAY_ADDRESS=commented.out:1",
            "",
            "   ",
            "HOME=/var/lib/raykit/home",
            "RAY_ADDRESS=10.0.0.1:6379",
            "   INDENTED = yes   ",
            'QUOTED="with spaces"',
            'EMPTY_QUOTED=""',
            "EMPTY=",
            "URL=http://10.0.0.1:8265/?a=b&c=d",
            'EQUALS="k=v"',
            "not a variable line",
            "RAY_ADDRESS=10.0.0.2:6379",
        ]
    )
    assert f.env_file(text) == {
        "HOME": "/var/lib/raykit/home",
        "RAY_ADDRESS": "10.0.0.2:6379",  # the last assignment wins, as in systemd
        "INDENTED": "yes",
        "QUOTED": "with spaces",
        "EMPTY_QUOTED": "",
        "EMPTY": "",
        "URL": "http://10.0.0.1:8265/?a=b&c=d",
        "EQUALS": "k=v",
    }


def test_env_file_reads_the_shipped_templates_shape() -> None:
    # What roles/ray_node/templates/client.env.j2 renders to.
    text = (
        "#\n# Ansible managed\n#\n"
        "# For Ray drivers and CLI commands run on this node as the Ray user:\n"
        "#   sudo -u raykit env $(grep -v '^#' /etc/raykit/client.env | xargs) python x.py\n"
        "RAY_ADDRESS=10.89.10.11:6379\n"
        "RAY_DASHBOARD_ADDRESS=http://10.89.10.11:8265\n"
        "RAY_AUTH_MODE=token\n"
        "RAY_AUTH_TOKEN_PATH=/etc/raykit/token\n"
        "RAY_USAGE_STATS_ENABLED=0\n"
    )
    assert f.env_file(text) == {
        "RAY_ADDRESS": "10.89.10.11:6379",
        "RAY_DASHBOARD_ADDRESS": "http://10.89.10.11:8265",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": "/etc/raykit/token",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def test_env_file_of_nothing() -> None:
    assert f.env_file("") == {}
    assert f.env_file("# only a comment\n\n") == {}


def test_cluster_nodes_head_first_with_preflight_addresses() -> None:
    hostvars = {
        "w1": {"raykit_node_address": "10.0.0.12"},
        "h": {"raykit_node_address": "10.0.0.11"},
        "w2": {"raykit_node_address": "10.0.0.13"},
    }
    assert f.cluster_nodes(["h"], ["w1", "w2"], hostvars) == [
        {"name": "h", "node_ip": "10.0.0.11", "role": "head"},
        {"name": "w1", "node_ip": "10.0.0.12", "role": "worker"},
        {"name": "w2", "node_ip": "10.0.0.13", "role": "worker"},
    ]
    assert f.cluster_nodes(["h"], [], hostvars) == [
        {"name": "h", "node_ip": "10.0.0.11", "role": "head"}
    ]


def test_venvs_to_prune_keeps_current_previous_and_the_newest() -> None:
    listing = [
        "link /opt/raykit/venvs/c",
        "link /opt/raykit/venvs/b",
        "venv 1700000001.5 /opt/raykit/venvs/a",
        "venv 1700000003.25 /opt/raykit/venvs/b",
        "venv 1700000002 /opt/raykit/venvs/c",
        "venv 1700000004.125 /opt/raykit/venvs/d",
        "venv 1700000000.75 /opt/raykit/venvs/e",
    ]
    # current and previous count towards keep; of the others the newest go last
    assert f.venvs_to_prune(listing, 2) == [
        "/opt/raykit/venvs/d",
        "/opt/raykit/venvs/a",
        "/opt/raykit/venvs/e",
    ]
    assert f.venvs_to_prune(listing, 3) == ["/opt/raykit/venvs/a", "/opt/raykit/venvs/e"]
    assert f.venvs_to_prune(listing, 10) == []


def test_venvs_to_prune_without_links_or_venvs() -> None:
    assert f.venvs_to_prune(["venv 5 /v/x", "venv 7 /v/y"], 1) == ["/v/x"]
    assert f.venvs_to_prune(["link /v/x", "link /v/x"], 1) == []
    assert f.venvs_to_prune([], 2) == []


def test_file_sha256_of_a_file_and_of_none(tmp_path: Path) -> None:
    data = b"\x00\xffraykit" * 300_000  # several read chunks, not text
    (tmp_path / "a.tar").write_bytes(data)
    assert f.file_sha256(str(tmp_path / "a.tar")) == hashlib.sha256(data).hexdigest()
    assert f.file_sha256(str(tmp_path / "missing.tar")) == ""
    assert f.file_sha256(str(tmp_path)) == ""  # a directory is not a cached archive


def test_venv_archive_ok_only_when_it_hashes_to_its_record(tmp_path: Path) -> None:
    archive = tmp_path / "py3.13.5-ray2.60.0-abc-123.tar.gz"
    record = Path(f"{archive}.json")
    assert not f.venv_archive_ok(str(archive))  # neither
    archive.write_bytes(b"venv" * 1000)
    assert not f.venv_archive_ok(str(archive))  # no record
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    record.write_text(json.dumps({"venv": "/opt/raykit/venvs/x", "sha256": digest}))
    assert f.venv_archive_ok(str(archive))
    archive.write_bytes(b"venv" * 1000 + b"!")
    assert not f.venv_archive_ok(str(archive))  # changed since it was recorded
    for text in ("", "{", "[]", '{"sha256": ""}', json.dumps({"venv": "/opt/raykit/venvs/x"})):
        record.write_text(text)
        assert not f.venv_archive_ok(str(archive)), text
    archive.unlink()
    record.write_text(json.dumps({"sha256": digest}))
    assert not f.venv_archive_ok(str(archive))  # a record without its archive


def test_local_file_in_state_checks_content_mode_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    assert not f.local_file_in_state(str(path), "{}\n", "0600")
    path.write_text("{}\n")
    path.chmod(0o600)
    assert f.local_file_in_state(str(path), "{}\n", "0600")
    assert not f.local_file_in_state(str(path), "{ }\n", "0600")
    path.chmod(0o644)
    assert not f.local_file_in_state(str(path), "{}\n", "0600")
    path.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert not f.local_file_in_state(str(link), "{}\n", "0600")  # copy would replace the link
