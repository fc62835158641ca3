"""Bad input stops in preflight, names the host, the problem and the fix, and changes nothing.

Real hosts (a 2-host sandbox: Debian 12 + Debian 13), real SSH, the real playbooks. Every case
ends by checking that no host got anything: no /opt/raykit, no unit, no Ray process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from raykit import sandbox
from support import ansible_playbook

pytestmark = pytest.mark.integration

NAME = "raykit-test-gate"
REPO = Path(__file__).resolve().parents[2]

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


# What "unchanged" compares: the installed packages and every file under /etc, by path and
# modification time (taken once the hosts are up, before any test runs).
SNAPSHOT = (
    "dpkg-query -W -f '${Package} ${Version}\\n' | sha256sum;"
    " find /etc -xdev -printf '%p %T@\\n' 2>/dev/null | sort | sha256sum"
)


def snapshot(host: str) -> str:
    return subprocess.run(
        ["podman", "exec", host, "sh", "-c", SNAPSHOT], capture_output=True, text=True, check=True
    ).stdout


BEFORE: dict[str, str] = {}


@pytest.fixture(scope="module")
def inventory() -> Iterator[dict[str, Any]]:
    sandbox.down(name=NAME)
    try:
        path = sandbox.up(name=NAME, hosts=2, distros=["bookworm", "trixie"])
        inv = yaml.safe_load(path.read_text())
        for host in inv["all"]["hosts"]:
            BEFORE[host] = snapshot(host)
        yield inv
    finally:
        sandbox.down(name=NAME)


def write(inv: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


def converge(inv_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(inv_path, "site.yml", *extra, timeout=600)


def assert_untouched(inv: dict[str, Any]) -> None:
    """Nothing of raykit's on any host: no prefix, no unit, no Ray process."""
    for host in inv["all"]["hosts"]:
        out = subprocess.run(
            [
                "podman",
                "exec",
                host,
                "sh",
                "-c",
                "ls -d /opt/raykit /etc/raykit /etc/systemd/system/raykit-ray.service 2>/dev/null;"
                " pgrep -l raylet; pgrep -l gcs_server; true",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "", f"{host} was changed: {out.stdout!r}"
        assert snapshot(host) == BEFORE[host], f"{host}: a package or a file under /etc changed"


def test_different_interpreters_stop_at_the_gate(inventory: dict[str, Any], tmp_path: Path) -> None:
    # Debian 12's python3 is 3.11.2, Debian 13's is 3.13.5: Ray would refuse the join later.
    proc = converge(write(inventory, tmp_path), "-e", "raykit_python_source=system")
    out = proc.stdout
    assert proc.returncode != 0
    assert "Version gate: the hosts would not run the same python" in out
    assert "Nothing has been started" in out
    rows = re.findall(rf"^\s*({NAME}-node\d)\s+(\d+\.\d+\.\d+)( !)?\s*$", out, re.M)
    assert set(rows) == {(f"{NAME}-node1", "3.11.2", ""), (f"{NAME}-node2", "3.13.5", " !")}
    assert "raykit_python_source=source" in out  # the fix
    assert "ray start" not in out.lower().replace("`ray start`", "")
    assert_untouched(inventory)


def test_a_typo_in_a_variable_is_named_with_a_suggestion(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node2"]["ray_node_num_cpu"] = 1
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert (
        f"{NAME}-node2: unknown variable(s) ray_node_num_cpu (did you mean ray_node_num_cpus?)"
    ) in proc.stdout
    assert_untouched(inventory)


def test_two_heads_are_refused(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    children = inv["all"]["children"]
    children["ray_head"]["hosts"] = {f"{NAME}-node1": None, f"{NAME}-node2": None}
    children["ray_worker"]["hosts"] = {}
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert "must put exactly one host in the group ray_head; it has 2" in proc.stdout
    assert_untouched(inventory)


def test_a_wrong_node_ip_is_named(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    hosts = inv["all"]["hosts"]
    hosts[f"{NAME}-node2"]["raykit_node_ip"] = hosts[f"{NAME}-node1"]["raykit_node_ip"]
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert (
        f"{NAME}-node2: raykit_node_ip {hosts[f'{NAME}-node1']['raykit_node_ip']} "
        "is not one of its addresses"
    ) in proc.stdout
    assert_untouched(inventory)


def test_standalone_without_an_archive_names_what_to_set(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    proc = converge(write(inventory, tmp_path), "-e", "raykit_python_source=standalone")
    assert proc.returncode != 0
    assert "raykit_python_standalone has no url and sha256 for x86_64" in proc.stdout
    assert_untouched(inventory)


def test_an_unreachable_host_stops_everything(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node2"]["ansible_host"] = "127.0.0.1"
    inv["all"]["hosts"][f"{NAME}-node2"]["ansible_port"] = 1  # nothing listens there
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert f"{NAME}-node2" in proc.stdout and "UNREACHABLE" in proc.stdout
    assert_untouched(inventory)


@pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")
def test_the_cli_exits_non_zero_and_names_the_failing_host(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    raykit = str(Path(os.sys.executable).parent / "raykit")
    proc = subprocess.run(
        [raykit, "up", "-i", str(write(inventory, tmp_path)), "-e", "raykit_python_source=system"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 1
    assert f"{NAME}-node1 failed at" in proc.stderr
    assert "Version gate" in proc.stderr
    assert_untouched(inventory)


# ------------------------------------------------------------------ bad values (every row)


def invalid(proc: subprocess.CompletedProcess[str]) -> str:
    """The check's message: the run failed in preflight's first play, on the control node."""
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    assert "Invalid value(s); nothing has been changed on any host" in out, out[-3000:]
    assert "Preflight | hosts" not in out  # no host was even contacted
    return out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "ray_node_auth_mode=tokn",
            "ray_node_auth_mode = 'tokn' (set with -e; all 2 hosts): value of ray_node_auth_mode "
            "must be one of: token, disabled, got: tokn",
        ),
        ("ray_node_restart=sometimes", "must be one of: no, on-success, on-failure"),
        ("ray_node_num_cpus=abc", "ray_node_num_cpus = 'abc' (set with -e; all 2 hosts)"),
        ("raykit_python_version=3.13", "must be a full version, major.minor.micro"),
        ("ray_node_start_timeout=soon", "ray_node_start_timeout"),
    ],
)
def test_a_bad_value_with_e_stops_before_any_host(
    extra: str, expected: str, inventory: dict[str, Any], tmp_path: Path
) -> None:
    out = invalid(converge(write(inventory, tmp_path), "-e", extra))
    assert expected in out
    assert_untouched(inventory)


def ports(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "roles/raykit/defaults/main/ports.yml").read_text())
    return {**data["raykit_ports"], **changes}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ports(dashboard=6379), "dashboard and gcs are both 6379: every port must differ"),
        (ports(dashboard=80), "dashboard=80 is outside 1024-65535"),
        ({"dashboard": 9999}, "misses gcs, client_server"),
        (ports(gcs=10500), "the worker range 10002-10999 holds gcs=10500"),
    ],
)
def test_a_bad_port_map_in_the_inventory_stops_before_any_host(
    value: dict[str, Any], expected: str, inventory: dict[str, Any], tmp_path: Path
) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["vars"]["raykit_ports"] = value
    out = invalid(converge(write(inv, tmp_path)))
    assert "raykit_ports = " in out and "(set in the inventory; all 2 hosts)" in out
    assert expected in out
    assert_untouched(inventory)


def test_a_host_that_cannot_become_root_is_named(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node2"]["ansible_become"] = False
    proc = converge(write(inv, tmp_path))
    assert proc.returncode != 0
    assert f"{NAME}-node2: Ansible runs as admin (uid" in proc.stdout
    assert "set ansible_become: true" in proc.stdout
    assert "Artifacts |" not in proc.stdout
    assert_untouched(inventory)


def test_an_unreachable_head_stops_in_preflight(inventory: dict[str, Any], tmp_path: Path) -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory))
    inv["all"]["hosts"][f"{NAME}-node1"]["ansible_host"] = "127.0.0.1"
    inv["all"]["hosts"][f"{NAME}-node1"]["ansible_port"] = 1  # nothing listens there
    path = write(inv, tmp_path)
    proc = converge(path)
    assert proc.returncode != 0
    # Preflight's own words, with the fix.
    assert f"Unreachable: {NAME}-node1 (admin@127.0.0.1, port 1)" in proc.stdout
    assert "ssh -p 1 admin@127.0.0.1` works from here" in proc.stdout
    assert "Artifacts |" not in proc.stdout
    assert_untouched(inventory)
    # raykit up counts it in its summary.
    cli = subprocess.run(
        [str(Path(os.sys.executable).parent / "raykit"), "up", "-i", str(path)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert cli.returncode == 1
    assert cli.stderr.count(f"{NAME}-node1 failed at") == 1  # one account, preflight's
    row = next(line for line in cli.stderr.splitlines() if f"{NAME}-node1 " in line and "│" in line)
    assert [c.strip() for c in row.split("│")[1:-1]][4] == "1"  # unreachable column


def test_an_inventory_that_does_not_parse_shows_the_parser(tmp_path: Path) -> None:
    bad = tmp_path / "hosts.yml"
    bad.write_text(
        "all:\n  children:\n    ray_head:\n      hosts:\n        h1:\n     ansible_host: 10.0.0.1\n"
    )
    proc = converge(bad)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "YAML parsing failed" in out and f"{bad}:6:6" in out
    assert "ray_head has 0 hosts" not in out and "exactly one host" not in out
    cli = subprocess.run(
        [str(Path(os.sys.executable).parent / "raykit"), "up", "-i", str(bad)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert cli.returncode != 0
    assert f"Completely failed to parse inventory source {bad}" in cli.stderr
    assert f"Origin: {bad}:6:6" in cli.stderr  # the line and column, without a log to open


def test_a_wrong_python_pin_is_an_error_whatever_the_cache_holds(
    inventory: dict[str, Any], tmp_path: Path
) -> None:
    """A pin of 64 zeros: refused with the cache's tarball and build (the case the cache would
    have hidden), and with the tarball alone (naming its real checksum, not "copy it")."""
    cache = tmp_path / "cache"
    real = Path(os.environ.get("RAYKIT_CACHE_DIR") or Path.home() / ".cache/raykit") / "python"
    tarball = real / "Python-3.13.5.tar.xz"
    if not tarball.is_file():
        pytest.skip("needs the cached CPython tarball (any converge with a cold cache fetches it)")
    (cache / "python").mkdir(parents=True)
    shutil.copy(tarball, cache / "python" / tarball.name)
    build = cache / "python" / "cpython-3.13.5-x86_64-glibc2.36.tar.gz"
    build.write_bytes(b"stands in for a build: preflight never opens it")
    (cache / "python" / f"{build.name}.source-sha256").write_text(
        "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640\n"
    )
    zeros = "0" * 64
    args = (
        "-e",
        f"raykit_cache_dir={cache}",
        "-e",
        f'{{"raykit_python_source_sha256": {{"3.13.5": "{zeros}"}}}}',
    )
    proc = converge(write(inventory, tmp_path), *args)
    assert proc.returncode != 0
    out = proc.stdout
    assert "has sha256 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640" in out
    assert f"raykit_python_source_sha256['3.13.5'] pins {zeros}" in out
    assert "Preflight | hosts" not in out
    # With the tarball gone, the build's record names the source it was made from.
    (cache / "python" / tarball.name).unlink()
    proc = converge(write(inventory, tmp_path), *args)
    assert proc.returncode != 0
    assert (
        f"The cached build {build} was made from a source tarball with sha256 93e583" in proc.stdout
    )
    assert "Preflight | hosts" not in proc.stdout
    assert_untouched(inventory)
