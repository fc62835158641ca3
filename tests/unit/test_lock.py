"""roles/ray_venv/files/lock_for_target.py: narrowing the universal lock to one target."""

from __future__ import annotations

import re
import runpy
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from support import load_by_path

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "ray_venv" / "files"
SCRIPT = FILES / "lock_for_target.py"
LOCK = FILES / "requirements.lock"
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


lft = load_by_path(SCRIPT, "raykit_lock_for_target")


def spec_of(entry: str) -> str:
    """'name==version' of an entry, marker and hashes cut off."""
    return entry.split(" --hash=")[0].partition(";")[0].strip()


def marker_of(entry: str) -> str:
    return entry.split(" --hash=")[0].partition(";")[2].strip()


def name_of(entry: str) -> str:
    return spec_of(entry).split("==")[0].lower()


def by_spec(entries: list[str]) -> dict[str, str]:
    out = {spec_of(e): e for e in entries}
    assert len(out) == len(entries), "an entry is pinned twice"
    return out


@pytest.fixture(scope="module")
def lock_text() -> str:
    return LOCK.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def source(lock_text: str) -> dict[str, str]:
    """The universal lock's entries, by 'name==version'."""
    return by_spec(lft.entries(lock_text))


@pytest.fixture(scope="module")
def pins() -> dict[str, object]:
    return yaml.safe_load((REPO / "roles/raykit/defaults/main/versions.yml").read_text())


def pinned_in(requirements_in: str, name: str) -> str:
    m = re.search(rf"(?m)^{re.escape(name)}(\[[^\]]*\])?==(\S+)", requirements_in)
    assert m, f"{name} is not pinned in requirements.in"
    return m.group(2)


def version_for(source: dict[str, str], name: str, marker: str) -> str:
    """The version of `name` whose marker line in the lock reads exactly `marker`."""
    found = [
        s.split("==")[1] for s, e in source.items() if name_of(e) == name and marker_of(e) == marker
    ]
    assert len(found) == 1, (name, marker, found)
    return found[0]


# ---------------------------------------------------------------------------- the real lock


def test_the_real_lock_parses_into_hashed_entries(source: dict[str, str]) -> None:
    assert len(source) > 50
    for spec, entry in source.items():
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", spec), spec
        assert HASH.search(entry), f"{spec} has no sha256 hash"
        assert "#" not in entry.replace("--hash=", ""), f"a comment leaked into {spec}"
    # numpy is there once per Python range: the case narrowing exists for.
    assert sum(name_of(e) == "numpy" for e in source.values()) == 3


@pytest.fixture(scope="module")
def narrowed(lock_text: str) -> str:
    return lft.narrow(lock_text, "3.13.5", "x86_64")


@pytest.fixture(scope="module")
def kept(narrowed: str) -> dict[str, str]:
    return by_spec(lft.entries(narrowed))


def test_narrowed_lock_starts_with_a_header_naming_the_target(narrowed: str) -> None:
    first = narrowed.splitlines()[0]
    assert first.startswith("# 3.13.5 on x86_64")
    assert narrowed.endswith("\n")


def test_narrowed_lock_keeps_exactly_one_numpy_the_one_for_3_12_and_later(
    kept: dict[str, str], source: dict[str, str]
) -> None:
    numpys = [s for s in kept if s.startswith("numpy==")]
    want = version_for(source, "numpy", "python_full_version >= '3.12'")
    assert numpys == [f"numpy=={want}"]
    assert numpys == ["numpy==2.5.5"]


def test_narrowed_lock_has_one_pin_per_package(kept: dict[str, str]) -> None:
    names = [name_of(e) for e in kept.values()]
    assert len(names) == len(set(names))


def test_narrowed_lock_has_no_markers_left(kept: dict[str, str]) -> None:
    for spec, entry in kept.items():
        assert ";" not in entry, spec


def test_narrowed_lock_drops_windows_and_old_python_entries(
    kept: dict[str, str], source: dict[str, str]
) -> None:
    assert "colorama" not in {name_of(e) for e in kept.values()}
    old = [s for s, e in source.items() if marker_of(e).startswith("python_full_version < '3.11'")]
    assert len(old) >= 5  # async-timeout, filelock, multidict, numpy, platformdirs, ...
    for spec in old:
        assert spec not in kept, spec
    # async-timeout only exists for Python < 3.11: gone altogether.
    assert "async-timeout" not in {name_of(e) for e in kept.values()}
    # The others come back at their >= 3.11 pin.
    for name in ("filelock", "multidict", "platformdirs", "rpds-py"):
        want = version_for(source, name, "python_full_version >= '3.11'")
        assert f"{name}=={want}" in kept, name


def test_narrowed_lock_keeps_unmarked_and_true_markers(
    kept: dict[str, str], source: dict[str, str]
) -> None:
    unmarked = {s for s, e in source.items() if not marker_of(e)}
    assert unmarked <= set(kept)
    # CPython markers evaluate true on the target.
    assert any(s.startswith("cffi==") for s in kept)
    assert any(s.startswith("pycparser==") for s in kept)


def test_narrowed_lock_keeps_ray_at_the_kits_version_and_uv(
    kept: dict[str, str], pins: dict[str, object]
) -> None:
    assert f"ray=={pins['raykit_ray_version']}" in kept
    uv = pinned_in((FILES / "requirements.in").read_text(), "uv")
    assert f"uv=={uv}" in kept


def test_narrowed_lock_keeps_every_hash_of_every_kept_entry(
    kept: dict[str, str], source: dict[str, str]
) -> None:
    total = 0
    for spec, entry in kept.items():
        got = HASH.findall(entry)
        want = HASH.findall(source[spec])
        assert got == want, spec
        assert len(got) == entry.count("--hash=sha256:")
        total += len(got)
    assert total == sum(len(HASH.findall(source[s])) for s in kept)
    assert total > len(kept)  # wheels for several platforms: many hashes per entry


def test_narrowed_lock_is_in_pip_format(narrowed: str) -> None:
    lines = narrowed.splitlines()[1:]
    for line in lines:
        if line.startswith(" "):
            assert re.fullmatch(r"    --hash=sha256:[0-9a-f]{64}( \\)?", line), line
        else:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==\S+( \\)?", line), line


def test_narrowing_is_idempotent(narrowed: str) -> None:
    assert lft.narrow(narrowed, "3.13.5", "x86_64") == narrowed


def test_narrowing_for_3_11_picks_numpys_3_11_pin(lock_text: str, source: dict[str, str]) -> None:
    kept = by_spec(lft.entries(lft.narrow(lock_text, "3.11.2", "x86_64")))
    numpys = [s for s in kept if s.startswith("numpy==")]
    want = version_for(source, "numpy", "python_full_version == '3.11.*'")
    assert numpys == [f"numpy=={want}"]
    assert numpys == ["numpy==2.4.6"]
    assert "colorama" not in {name_of(e) for e in kept.values()}


def test_narrowing_for_3_10_keeps_the_old_python_entries(
    lock_text: str, source: dict[str, str]
) -> None:
    kept = by_spec(lft.entries(lft.narrow(lock_text, "3.10.12", "x86_64")))
    assert any(s.startswith("async-timeout==") for s in kept)
    want = version_for(source, "numpy", "python_full_version < '3.11'")
    assert [s for s in kept if s.startswith("numpy==")] == [f"numpy=={want}"]


def test_script_entry_point_writes_the_narrowed_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrowed: str
) -> None:
    out = tmp_path / "requirements-3.13.5-x86_64.txt"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), str(LOCK), str(out), "3.13.5", "x86_64"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert out.read_text(encoding="utf-8") == narrowed


# ---------------------------------------------------------------------------- a synthetic lock


SYNTHETIC = """\
# This file was autogenerated; a comment line at the top.
alpha==1.0 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via beta
beta==2.0 ; python_full_version < '3.12' \\
    --hash=sha256:ccc
    # via
    #   alpha
    #   gamma
gamma==3.0 ; sys_platform == 'linux' and platform_machine == 'aarch64' \\
    --hash=sha256:ddd \\
    --hash=sha256:eee
delta==4.0  # an inline comment

epsilon==5.0 ; platform_machine == 'x86_64'
zeta==6.0 ; sys_platform == 'win32' or sys_platform == 'darwin' \\
    --hash=sha256:fff
eta==7.0 ; python_version >= '3.13' \\
    --hash=sha256:ggg
"""


def test_entries_joins_continuation_lines_and_drops_comments() -> None:
    assert lft.entries(SYNTHETIC) == [
        "alpha==1.0 --hash=sha256:aaa --hash=sha256:bbb",
        "beta==2.0 ; python_full_version < '3.12' --hash=sha256:ccc",
        "gamma==3.0 ; sys_platform == 'linux' and platform_machine == 'aarch64'"
        " --hash=sha256:ddd --hash=sha256:eee",
        "delta==4.0",
        "epsilon==5.0 ; platform_machine == 'x86_64'",
        "zeta==6.0 ; sys_platform == 'win32' or sys_platform == 'darwin' --hash=sha256:fff",
        "eta==7.0 ; python_version >= '3.13' --hash=sha256:ggg",
    ]


def test_entries_of_nothing() -> None:
    assert lft.entries("") == []
    assert lft.entries("# only\n   # comments\n\n") == []


def test_entries_keeps_a_trailing_continuation() -> None:
    assert lft.entries("omega==1 \\\n    --hash=sha256:x \\") == ["omega==1 --hash=sha256:x"]


@pytest.mark.parametrize(
    ("python", "machine", "expected"),
    [
        ("3.13.5", "x86_64", ["alpha==1.0", "delta==4.0", "epsilon==5.0", "eta==7.0"]),
        ("3.11.2", "aarch64", ["alpha==1.0", "beta==2.0", "gamma==3.0", "delta==4.0"]),
        ("3.12.0", "aarch64", ["alpha==1.0", "gamma==3.0", "delta==4.0"]),
    ],
)
def test_narrow_synthetic(python: str, machine: str, expected: list[str]) -> None:
    out = lft.narrow(SYNTHETIC, python, machine)
    assert (
        out.splitlines()[0]
        == f"# {python} on {machine}: narrowed from the universal lock by raykit"
    )
    kept = lft.entries(out)
    assert [spec_of(e) for e in kept] == expected
    assert "zeta" not in out


def test_narrow_synthetic_layout() -> None:
    out = lft.narrow(SYNTHETIC, "3.13.5", "x86_64")
    assert out.splitlines()[1:] == [
        "alpha==1.0 \\",
        "    --hash=sha256:aaa \\",
        "    --hash=sha256:bbb",
        "delta==4.0",
        "epsilon==5.0",
        "eta==7.0 \\",
        "    --hash=sha256:ggg",
    ]


@pytest.mark.parametrize(
    ("python", "kept"), [("3.11.2", False), ("3.11.4", True), ("3.12.0", True)]
)
def test_narrow_evaluates_the_full_python_version(python: str, kept: bool) -> None:
    text = "kappa==1.0 ; python_full_version >= '3.11.4' \\\n    --hash=sha256:kkk\n"
    assert ("kappa==1.0" in lft.narrow(text, python, "x86_64")) is kept


def test_the_control_node_runs_the_clusters_ray() -> None:
    # raykit bench talks to the cluster with Ray's own job client: the same Ray version as
    # the nodes (versions.yml), so the client and the dashboard speak the same API.

    repo = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(r"ray(\[[^\]]*\])?==", d)]
    versions = yaml.safe_load((repo / "roles/raykit/defaults/main/versions.yml").read_text())
    assert pins == [f"ray[default]=={versions['raykit_ray_version']}"]
