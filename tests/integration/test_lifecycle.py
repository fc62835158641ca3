"""The CLI end to end on one real sandbox host: up, smoke, status, down, down --purge.

`raykit up` is the same site.yml as `ansible-playbook site.yml` (Molecule covers the 3-host
cluster); here the point is the commands a user types and what each leaves on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ansible_playbook, fresh_sandbox, raykit

pytestmark = pytest.mark.integration

NAME = "raykit-test-life"
REPO = Path(__file__).resolve().parents[2]

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def inventory() -> Iterator[Path]:
    with fresh_sandbox(NAME, 1) as path:
        yield path


def on_host(command: str) -> str:
    return subprocess.run(
        ["podman", "exec", f"{NAME}-node1", "sh", "-c", command],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_up_smoke_status_down_purge(inventory: Path) -> None:
    inv = str(inventory)
    up = raykit("up", "-i", inv)
    assert up.returncode == 0, up.stderr[-3000:]
    assert f"1 nodes alive: {on_host('hostname -i').split()[0]}" in up.stderr

    again = raykit("up", "-i", inv)
    assert again.returncode == 0, again.stderr[-3000:]
    # the summary table: host, ok, changed, failed, ... -> changed is 0
    row = next(
        line for line in again.stderr.splitlines() if f"{NAME}-node1" in line and "│" in line
    )
    assert [c.strip() for c in row.split("│") if c.strip()][2] == "0", row

    smoke = raykit("smoke", "-i", inv)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    for x, square in enumerate([0, 1, 4, 9, 16]):
        assert f"task {x}: {square:>3} on {NAME}-node1" in smoke.stderr

    status = raykit("status", "-i", inv, "--deep")
    assert status.returncode == 0, status.stderr[-3000:]
    line = next(ln for ln in status.stderr.splitlines() if ln.startswith(f"{NAME}-node1 "))
    assert line.split()[1:] == [
        "head",
        on_host("hostname -i").split()[0],
        "active",
        "enabled",
        "3.13.5",
        "2.60.0",
    ]
    assert "1 alive nodes" in status.stderr

    down = raykit("down", "-i", inv)
    assert down.returncode == 0, down.stderr[-3000:]
    assert on_host("systemctl is-active raykit-ray || true") == "inactive"
    assert on_host("systemctl is-enabled raykit-ray || true") == "disabled"
    assert on_host("pgrep -u raykit | wc -l") == "0"
    assert on_host("test -d /opt/raykit/current && echo kept") == "kept"

    purge = raykit("down", "-i", inv, "--purge")
    assert purge.returncode == 0, purge.stderr[-3000:]
    assert (
        on_host(
            "ls -d /opt/raykit /etc/raykit /var/lib/raykit "
            "/etc/systemd/system/raykit-ray.service 2>/dev/null || true"
        )
        == ""
    )
    assert on_host("getent passwd raykit || true") == ""


def test_standalone_interpreter_from_a_local_archive(inventory: Path, tmp_path: Path) -> None:
    """raykit_python_source=standalone installs a python-build-standalone-shaped archive.

    The real archives come from GitHub, which this machine cannot reach; the install logic is
    exercised with an archive of the same layout (top directory `python/`), made from the
    interpreter raykit built, served from a file:// URL and pinned by its sha256.
    """
    cache = Path(os.environ.get("RAYKIT_CACHE_DIR", Path.home() / ".cache" / "raykit"))
    builds = sorted((cache / "python").glob("cpython-3.13.5-x86_64-glibc*.tar.gz"))
    if not builds:  # the first test built one; without it there is nothing to repack
        pytest.fail(f"no CPython build in {cache / 'python'}")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-C", str(unpacked), "-xzf", str(builds[-1])], check=True)
    (unpacked / "3.13.5").rename(unpacked / "python")
    archive = tmp_path / "cpython-3.13.5+local-x86_64-unknown-linux-gnu-install_only.tar.gz"
    subprocess.run(["tar", "-C", str(unpacked), "-czf", str(archive), "python"], check=True)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    extra = tmp_path / "standalone.yml"
    extra.write_text(
        "raykit_python_source: standalone\n"
        "raykit_python_standalone:\n"
        f"  x86_64: {{url: 'file://{archive}', sha256: '{digest}'}}\n"
    )
    proc = ansible_playbook(inventory, "site.yml", "-e", f"@{extra}", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "1 nodes alive" in proc.stdout
    assert on_host("/opt/raykit/current/bin/python -c 'import sys; print(sys.version)'").startswith(
        "3.13.5"
    )
    # The archive went through the cache, checked against its pin.
    assert (cache / "python" / archive.name).exists()
    (cache / "python" / archive.name).unlink()
    # So did the venv made on it (packed for the next host): one archive, named for it.
    venvs = [
        p
        for p in (cache / "venv").glob("*.tar.gz")
        if json.loads(Path(f"{p}.json").read_text())["python_archive"] == archive.name
    ]
    assert len(venvs) == 1, venvs
    for p in venvs:
        p.unlink()
        Path(f"{p}.json").unlink()
