"""roles/artifact, the one mechanism every pinned archive goes through, for each component of
the artifact table, on the control node alone (no sandbox): a pin without a checksum is
refused, a mirror serving other bytes is refused by name, a cached archive is reused with the
mirrors gone, and install + purge put the release in place and take it away again (into a
throw-away raykit_prefix on this machine).

The archives are stand-ins with each component's real name and layout (a top directory, the
probed binary answering like the real one); none of them is the real software.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import ansible_playbook

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PLAY = REPO / "tests" / "fixtures" / "artifact" / "play.yml"
PINS = yaml.safe_load((REPO / "roles/raykit/defaults/main/versions.yml").read_text())
PROM = PINS["raykit_prometheus_version"]
GRAF = PINS["raykit_grafana_version"]
PY = PINS["raykit_python_version"]

# component: (file name, cache subdirectory, top directory, probed binary, what it prints,
#             the variables that pin it given a sha256 and a mirror directory)
COMPONENTS: dict[str, dict[str, Any]] = {
    "prometheus": {
        "file": f"prometheus-{PROM}.linux-amd64.tar.gz",
        "cache": "prometheus",
        "top": f"prometheus-{PROM}.linux-amd64",
        "binary": "prometheus",
        "says": f"prometheus, version {PROM} (stand-in)",
        "pin": lambda sha, mirror: {
            "raykit_prometheus_sha256": {PROM: {"amd64": sha}},
            "raykit_prometheus_mirrors": [f"file://{mirror}"],
        },
        "setting": f"raykit_prometheus_sha256['{PROM}'].amd64",
    },
    "grafana": {
        "file": f"grafana-{GRAF}.linux-amd64.tar.gz",
        "cache": "grafana",
        "top": f"grafana-v{GRAF}",
        "binary": "bin/grafana",
        "says": f"grafana version {GRAF} (stand-in)",
        "pin": lambda sha, mirror: {
            "raykit_grafana_sha256": {GRAF: {"amd64": sha}},
            "raykit_grafana_mirrors": [f"file://{mirror}"],
        },
        "setting": f"raykit_grafana_sha256['{GRAF}'].amd64",
    },
    "python_source": {
        "file": f"Python-{PY}.tar.xz",
        "cache": "python",
        "top": f"Python-{PY}",
        "binary": None,  # built, not installed: fetch only
        "says": "",
        "pin": lambda sha, mirror: {
            "raykit_python_source_sha256": {PY: sha},
            "raykit_python_source_urls": [f"file://{mirror}/Python-{PY}.tar.xz"],
        },
        "setting": f"raykit_python_source_sha256['{PY}']",
    },
}

if os.geteuid() != 0:
    pytest.skip("install and purge set root ownership (run as root)", allow_module_level=True)


def stand_in(component: str, path: Path) -> str:
    """An archive with the component's layout; its sha256."""
    c = COMPONENTS[component]
    files = {"README.raykit-test": ("a raykit test stand-in\n", 0o644)}
    if c["binary"]:
        files[c["binary"]] = (f"#!/bin/sh\necho '{c['says']}'\n", 0o755)
    mode = "w:xz" if path.name.endswith(".xz") else "w:gz"
    with tarfile.open(path, mode) as tar:
        for name, (text, perm) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{c['top']}/{name}")
            info.size, info.mode, info.mtime = len(data), perm, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def step(work: Path, component: str, name: str, variables: dict[str, Any]) -> tuple[int, str, int]:
    """One entry point of the role; (rc, output, tasks changed)."""
    extra = work / "extra.json"
    extra.write_text(
        json.dumps(
            {
                "step": name,
                "component": component,
                "raykit_prefix": str(work / "prefix"),
                "ansible_python_interpreter": sys.executable,
                **variables,
            }
        )
    )
    proc = ansible_playbook(
        "localhost,", PLAY, "-e", f"@{extra}", timeout=300,
        env={"RAYKIT_CACHE_DIR": str(work / "cache")},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    recap = re.search(r"localhost\s+:.*?changed=(\d+)", out.split("PLAY RECAP")[-1])
    return proc.returncode, out, int(recap[1]) if recap else -1


@pytest.fixture(params=sorted(COMPONENTS))
def component(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name = request.param
    sha = stand_in(name, mirror / COMPONENTS[name]["file"])
    return {"name": name, "work": tmp_path, "mirror": mirror, "sha": sha, **COMPONENTS[name]}


def cached(c: dict[str, Any]) -> Path:
    return c["work"] / "cache" / c["cache"] / c["file"]


def test_a_pin_without_a_checksum_is_refused_before_anything_is_fetched(
    component: dict[str, Any],
) -> None:
    c = component
    for entry in ("check", "fetch"):
        rc, out, _ = step(c["work"], c["name"], entry, c["pin"]("", c["mirror"]))
        assert rc != 0, out[-3000:]
        assert "a pin without a checksum is refused" in out, out[-3000:]
        assert c["setting"] in out
    assert not cached(c).exists()


def test_a_mirror_serving_other_bytes_is_refused_by_name(component: dict[str, Any]) -> None:
    c = component
    rc, out, _ = step(c["work"], c["name"], "fetch", c["pin"]("0" * 64, c["mirror"]))
    assert rc != 0, out[-3000:]
    assert f"No mirror could supply {c['file']} with sha256 {'0' * 64}" in out, out[-3000:]
    assert f"file://{c['mirror']}/{c['file']}" in out
    assert not cached(c).exists()


def test_preflight_refuses_a_cached_archive_that_is_not_the_pinned_one(
    component: dict[str, Any],
) -> None:
    c = component
    cached(c).parent.mkdir(parents=True)
    cached(c).write_bytes(b"other bytes")
    rc, out, _ = step(c["work"], c["name"], "check", c["pin"](c["sha"], c["mirror"]))
    assert rc != 0, out[-3000:]
    assert f"{cached(c)} has sha256 {hashlib.sha256(b'other bytes').hexdigest()}" in out
    assert "Nothing has been changed" in out


def test_preflight_stops_when_no_mirror_serves_an_uncached_archive(
    component: dict[str, Any],
) -> None:
    c = component
    (c["mirror"] / c["file"]).unlink()
    rc, out, _ = step(c["work"], c["name"], "check", c["pin"](c["sha"], c["mirror"]))
    assert rc != 0, out[-3000:]
    assert f"file://{c['mirror']}/{c['file']}: no such file" in out, out[-3000:]
    assert str(cached(c)) in out
    assert "Nothing has been changed" in out


def test_fetched_once_then_reused_with_the_mirror_gone(component: dict[str, Any]) -> None:
    c = component
    pin = c["pin"](c["sha"], c["mirror"])
    rc, out, changed = step(c["work"], c["name"], "fetch", pin)
    assert rc == 0, out[-3000:]
    assert changed > 0
    assert cached(c).read_bytes() == (c["mirror"] / c["file"]).read_bytes()
    (c["mirror"] / c["file"]).unlink()
    for entry in ("check", "fetch"):
        rc, out, changed = step(c["work"], c["name"], entry, pin)
        assert rc == 0, out[-3000:]
        assert changed == 0, out[-3000:]


def test_installed_once_then_left_alone_then_purged(component: dict[str, Any]) -> None:
    c = component
    if not c["binary"]:
        pytest.skip(f"{c['name']} is built from its archive, not installed from it")
    pin = c["pin"](c["sha"], c["mirror"])
    home = c["work"] / "prefix" / c["name"]
    version = PROM if c["name"] == "prometheus" else GRAF
    rc, out, changed = step(c["work"], c["name"], "install", pin)
    assert rc == 0, out[-3000:]
    assert changed > 0
    assert (home / "current").readlink() == Path(version)
    binary = home / version / c["binary"]
    assert binary.read_text().startswith("#!/bin/sh")
    assert binary.stat().st_uid == 0
    assert (home / version / "README.raykit-test").is_file()  # the top directory stripped
    rc, out, changed = step(c["work"], c["name"], "install", pin)
    assert rc == 0, out[-3000:]
    assert changed == 0, out[-3000:]
    rc, out, changed = step(c["work"], c["name"], "purge", pin)
    assert rc == 0, out[-3000:]
    assert not home.exists()
    assert cached(c).exists()  # the control node's cache stays
