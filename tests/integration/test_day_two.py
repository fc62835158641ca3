"""Day-two operations on one real 2-host sandbox cluster, in order.

`raykit remove-node`: the worker is drained and stopped,
the rest of the cluster stops naming it, the inventory without it converges with nothing to
change, and `raykit up` with it adds it back. A worker that vanished is removed too; when it
comes back, the other hosts' firewall keeps it out and a second remove-node stops it.

The team's own packages (raykit_requirements_file): a pin against the kit's is refused in
preflight with nothing installed; `raykit up` with a package added refuses to restart the
running cluster onto another venv; `raykit upgrade` switches every node at once (the lock,
the venv id and every node's labels follow, the previous venv kept), `raykit rollback`
returns, and a third venv prunes the oldest, never the current one nor the previous one.

`raykit upgrade` between two real pins (Ray 2.60.0 and 2.59.0): a worker that cannot start on
the new venv makes the run fail naming it, with the old cluster whole again; without it, every
node runs the new versions, and `raykit rollback` returns to the old ones."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from raykit import sandbox
from support import fresh_sandbox, raykit

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

NAME = "raykit-test-day2"
HEAD, WORKER = f"{NAME}-node1", f"{NAME}-node2"
TARGETS = "/etc/prometheus/raykit/targets/ray.json"
VERSIONS = "import ray, tabulate; print(ray.__version__, tabulate.__version__)"
CLUSTER_DIR = Path.home() / ".config/raykit/clusters" / NAME

if os.geteuid() != 0:
    pytest.skip("the sandbox needs rootful podman (run as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def full() -> Iterator[str]:
    with fresh_sandbox(NAME, 2) as path:
        up = raykit("up", "-i", str(path), timeout=1800)
        assert up.returncode == 0, up.stderr[-3000:]
        yield str(path)


@pytest.fixture(scope="module")
def smaller(full: str) -> str:
    return str(sandbox.subset_inventory(NAME, 1))


def on(container: str, command: str) -> str:
    return subprocess.run(
        ["podman", "exec", container, "sh", "-c", command],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip


def changed(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Per host, the changed column of raykit's summary table."""
    out = {}
    for line in proc.stderr.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) > 3 and cells[0].startswith((NAME, "localhost")) and cells[2].isdigit():
            out[cells[0]] = int(cells[2])
    return out


def access() -> dict:
    return json.loads((CLUSTER_DIR / "cluster.json").read_text())


def said(proc: subprocess.CompletedProcess[str]) -> str:
    """What raykit printed, with the console's line wrapping undone."""
    return " ".join(proc.stderr.split())


def ray_nodes() -> list[dict]:
    """Every node record of Ray's state API (dead ones too), through the cluster's token."""
    acc = access()
    token = Path(acc.get("token_file") or CLUSTER_DIR / "ray_auth_token").read_text().strip()
    url = f"{acc['dashboard_url']}/api/v0/nodes?detail=true&limit=1000"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.load(r)["data"]["result"]["result"]


def answers(inventory: str, host: str, within: float = 120) -> None:
    """Wait until Ansible reaches host over SSH; fail naming it when it never does."""
    ansible = str(Path(sys.executable).parent / "ansible")
    deadline = time.monotonic() + within
    while True:
        proc = subprocess.run(
            [ansible, host, "-i", inventory, "-m", "ansible.builtin.ping", "-o"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if proc.returncode == 0 and f"{host} | SUCCESS" in proc.stdout:
            return
        assert time.monotonic() < deadline, f"{host} never answered over SSH: {proc.stdout[-500:]}"
        time.sleep(5)


def alive_ips() -> list[str]:
    return sorted(n["node_ip"] for n in ray_nodes() if n["state"] == "ALIVE")


def test_a_rollback_with_nothing_to_return_to_stops_nothing(full: str) -> None:
    proc = raykit("rollback", "-i", full, timeout=1800)
    assert proc.returncode != 0
    assert "Nothing to roll back to" in said(proc), proc.stderr[-3000:]
    assert f"{HEAD}: " in said(proc) and "Nothing has been stopped" in said(proc)
    assert all(on(c, "systemctl is-active raykit-ray") == "active" for c in (HEAD, WORKER))
    assert len(alive_ips()) == 2


def test_refuses_the_head_and_a_stranger_changing_nothing(full: str) -> None:
    for host, why in ((HEAD, "it is the head"), ("nosuchhost", "not in the inventory's group")):
        proc = raykit("remove-node", "-i", full, host)
        assert proc.returncode != 0
        assert f"Cannot remove {host}: {why}" in said(proc), proc.stderr[-2000:]
        assert "Nothing has been changed" in said(proc)
    assert on(WORKER, "systemctl is-active raykit-ray") == "active"
    assert len(access()["nodes"]) == 2


def test_remove_a_worker_then_the_smaller_inventory_has_nothing_to_change(
    full: str, smaller: str
) -> None:
    worker_ip = sandbox.host_ip(sandbox.subnet_for(NAME), 2)
    assert worker_ip in on(HEAD, f"cat {TARGETS}")

    proc = raykit("remove-node", "-i", full, WORKER, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"{WORKER}: drained" in said(proc), proc.stderr[-4000:]
    assert "1 nodes alive" in said(proc)  # the converge of the rest checked the head alone
    assert f"Take them out of {full} now" in said(proc)

    # The worker is stopped and stays stopped; nothing of it is purged without --purge.
    assert on(WORKER, "systemctl is-active raykit-ray") == "inactive"
    assert on(WORKER, "systemctl is-enabled raykit-ray") == "disabled"
    assert on(WORKER, "pgrep -u raykit | wc -l") == "0"
    assert on(WORKER, "test -d /opt/raykit/current && echo kept") == "kept"
    # The rest of the cluster no longer names it.
    assert worker_ip not in on(HEAD, f"cat {TARGETS}")
    assert [n["name"] for n in access()["nodes"]] == [HEAD]
    assert alive_ips() == [sandbox.host_ip(sandbox.subnet_for(NAME), 1)]
    status = raykit("status", "-i", smaller)
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-2000:]  # healthy
    # Ray itself records the drain as the reason the node ended.
    gone = [n for n in ray_nodes() if n["node_ip"] == worker_ip]
    assert gone and all(n["state"] == "DEAD" for n in gone)
    assert "raykit remove-node" in max(gone, key=lambda n: n["end_time_ms"])["state_message"]

    # The inventory without it: nothing to change, on the first run.
    again = raykit("up", "-i", smaller, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    counts = changed(again)
    assert HEAD in counts and all(n == 0 for n in counts.values()), counts

    smoke = raykit("smoke", "-i", smaller)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert f"on {WORKER}" not in smoke.stderr and f"on {HEAD}" in smoke.stderr

    # Added back: the full inventory brings it in again.
    back = raykit("up", "-i", full, timeout=1800)
    assert back.returncode == 0, back.stderr[-3000:]
    assert "2 nodes alive" in said(back)
    assert worker_ip in on(HEAD, f"cat {TARGETS}")
    assert len(access()["nodes"]) == 2


def test_a_vanished_worker_is_removed_and_kept_out_when_it_comes_back(
    full: str, smaller: str
) -> None:
    subprocess.run(["podman", "stop", "-t", "2", WORKER], check=True, capture_output=True)
    try:
        proc = raykit("remove-node", "-i", full, WORKER, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert f"{WORKER} did not answer" in said(proc), proc.stderr[-4000:]
        assert [n["name"] for n in access()["nodes"]] == [HEAD]
    finally:
        subprocess.run(["podman", "start", WORKER], check=True, capture_output=True)

    # Back, with its unit still enabled: Ray starts there and knocks, but the head's firewall
    # no longer lets it in; the smaller inventory converges with nothing to change.
    worker_ip = sandbox.host_ip(sandbox.subnet_for(NAME), 2)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert not [n for n in ray_nodes() if n["node_ip"] == worker_ip and n["state"] == "ALIVE"]
        time.sleep(5)
    assert on(WORKER, "systemctl is-enabled raykit-ray") == "enabled"
    again = raykit("up", "-i", smaller, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(n == 0 for n in changed(again).values()), changed(again)

    # Reachable again: a second remove-node stops it for good. The host answering SSH is this
    # step's premise, not what it tests: wait for it (a restarted container's address can take a
    # while to answer on this machine's bridge).
    answers(full, WORKER)
    proc = raykit("remove-node", "-i", full, WORKER, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"{WORKER}: not drained (not in the cluster's records" in said(proc), proc.stderr[-4000:]
    assert on(WORKER, "systemctl is-enabled raykit-ray") == "disabled"
    assert on(WORKER, "pgrep -u raykit | wc -l") == "0"


def test_the_teams_packages_are_an_upgrade_and_a_rollback_returns(
    full: str, tmp_path: Path
) -> None:
    team = tmp_path / "requirements.in"
    lock = tmp_path / "requirements.lock"
    use = ("-e", f"raykit_requirements_file={team}")
    back = raykit("up", "-i", full, timeout=1800)  # the worker removed above joins again
    assert back.returncode == 0, back.stderr[-3000:]
    assert "2 nodes alive" in said(back)
    kit = {c: on(c, "readlink /opt/raykit/current") for c in (HEAD, WORKER)}
    venvs = {c: on(c, "ls /opt/raykit/venvs") for c in (HEAD, WORKER)}

    team.write_text("numpy<2\n")  # the kit's lock has numpy 2 for every Python it runs
    bad = raykit("upgrade", "-i", full, *use, timeout=1800)
    assert bad.returncode != 0
    assert f"{team} cannot be installed beside the kit's packages" in said(bad), bad.stderr[-3000:]
    assert "numpy<2" in said(bad) and "Nothing has been installed" in said(bad)
    assert not lock.exists()
    assert {c: on(c, "ls /opt/raykit/venvs") for c in (HEAD, WORKER)} == venvs

    # A plain converge with new pins does not restart nodes one by one into a mixed cluster.
    team.write_text("tabulate==0.9.0\n")
    refused = raykit("up", "-i", full, *use, timeout=1800)
    assert refused.returncode != 0
    assert f"Ray runs on {HEAD}, {WORKER} from another venv" in said(refused), refused.stderr[
        -3000:
    ]
    assert "Nothing has been changed" in said(refused) and "raykit upgrade" in said(refused)
    assert {c: on(c, "ls /opt/raykit/venvs") for c in (HEAD, WORKER)} == venvs
    assert alive_ips() == sorted(sandbox.host_ip(sandbox.subnet_for(NAME), i) for i in (1, 2))

    up = raykit("upgrade", "-i", full, *use, timeout=1800)
    assert up.returncode == 0, up.stderr[-3000:]
    assert "Upgrade done on 2 nodes" in said(up) and "Downtime: " in said(up), up.stderr[-3000:]
    text = lock.read_text()
    assert text.startswith("# raykit team lock, inputs sha256 ")
    assert "\ntabulate==0.9.0 " in text and "\nray==2.60.0 " in text
    for c in (HEAD, WORKER):
        got = on(c, f"/opt/raykit/current/bin/python -c '{VERSIONS}'")
        assert got == "2.60.0 0.9.0", (c, got)
        assert on(c, "readlink /opt/raykit/previous") == kit[c]  # the rollback target
    # The running Ray is the new venv's: every alive node reports the team lock's hash.
    want = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    labels = [n["labels"].get("raykit/lock") for n in ray_nodes() if n["state"] == "ALIVE"]
    assert labels == [want, want], labels
    record = json.loads((CLUSTER_DIR / "switches.json").read_text())[-1]
    assert record["kind"] == "upgrade" and record["ok"] and record["to"]["lock_sha12"] == want
    assert 0 < float(record["downtime_s"]) < 300
    assert oct((CLUSTER_DIR / "switches.json").stat().st_mode & 0o777) == "0o600"

    again = raykit("up", "-i", full, *use, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(n == 0 for n in changed(again).values()), changed(again)  # no recompile either
    assert lock.read_text() == text
    same = raykit("upgrade", "-i", full, *use, timeout=1800)
    assert same.returncode == 0, same.stderr[-3000:]
    assert "Nothing to upgrade" in said(same) and "Nothing has been stopped" in said(same)
    assert all(n == 0 for n in changed(same).values()), changed(same)

    # Rollback: the kit's venv again on every node, the team's kept as the way forward.
    team_venv = {c: on(c, "readlink /opt/raykit/current") for c in (HEAD, WORKER)}
    rb = raykit("rollback", "-i", full, timeout=1800)
    assert rb.returncode == 0, rb.stderr[-3000:]
    assert "Rollback done on 2 nodes" in said(rb) and "Downtime: " in said(rb), rb.stderr[-3000:]
    for c in (HEAD, WORKER):
        assert on(c, "readlink /opt/raykit/current") == kit[c]
        assert on(c, "readlink /opt/raykit/previous") == team_venv[c]
        assert on(c, "/opt/raykit/current/bin/python -c 'import ray; print(ray.__version__)'") == (
            "2.60.0"
        )
    kit_lock = hashlib.sha256((REPO / "roles/ray_venv/files/requirements.lock").read_bytes())
    labels = [n["labels"].get("raykit/lock") for n in ray_nodes() if n["state"] == "ALIVE"]
    assert labels == [kit_lock.hexdigest()[:12]] * 2, labels
    smoke = raykit("smoke", "-i", full)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    # The pins still name the team's venv: a converge refuses; without the file, nothing to do.
    assert raykit("up", "-i", full, *use, timeout=1800).returncode != 0
    plain = raykit("up", "-i", full, timeout=1800)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert all(n == 0 for n in changed(plain).values()), changed(plain)

    # Another change: a third venv; the one in use and the previous stay, the oldest goes.
    team.write_text("tabulate==0.8.10\n")
    third = raykit("upgrade", "-i", full, *use, timeout=1800)
    assert third.returncode == 0, third.stderr[-3000:]
    for c in (HEAD, WORKER):
        assert on(c, "readlink /opt/raykit/previous") == kit[c]
        current = on(c, "readlink /opt/raykit/current")
        assert current not in (kit[c], team_venv[c])
        assert sorted(on(c, "ls -d /opt/raykit/venvs/*").split()) == sorted([current, kit[c]])
        assert on(c, f"{current}/bin/python -c '{VERSIONS}'") == "2.60.0 0.8.10"


RAY_2_59 = (
    "-e",
    "raykit_ray_version=2.59.0",
    "-e",
    f"raykit_lock_file={REPO}/tests/data/ray-2.59.0/requirements.lock",
)
DROPIN = "/etc/systemd/system/raykit-ray.service.d"
BOTH = "import sys, ray; print(sys.version.split()[0], ray.__version__)"


def test_a_failed_upgrade_puts_the_old_cluster_back_whole(full: str) -> None:
    before = {c: on(c, "readlink /opt/raykit/current") for c in (HEAD, WORKER)}
    previous = {c: on(c, "readlink /opt/raykit/previous") for c in (HEAD, WORKER)}
    # The worker's unit refuses to start on Ray 2.59's venv (exit 3: its unit counts 1 as a
    # clean stop), as a host would whose new venv is broken only at start.
    check = "readlink /opt/raykit/current | grep -q ray2.59.0 && exit 3 || exit 0"
    block = f"[Service]\nExecStartPre=/bin/sh -c '{check}'\n"
    subprocess.run(
        ["podman", "exec", "-i", WORKER, "sh", "-c",
         f"mkdir -p {DROPIN} && cat >{DROPIN}/block.conf && systemctl daemon-reload"],
        input=block, text=True, check=True,
    )  # fmt: skip
    try:
        assert "exit 3" in on(WORKER, "systemctl cat raykit-ray")
        proc = raykit("upgrade", "-i", full, *RAY_2_59, timeout=1800)
    finally:
        on(WORKER, f"rm -rf {DROPIN} && systemctl daemon-reload")
    assert proc.returncode != 0
    assert f"Upgrade failed: {WORKER} at start:" in said(proc), proc.stderr[-4000:]
    assert "the cluster is whole again" in said(proc), proc.stderr[-4000:]
    for c in (HEAD, WORKER):
        assert on(c, "readlink /opt/raykit/current") == before[c]
        assert on(c, "readlink /opt/raykit/previous") == previous[c]
        assert on(c, "systemctl is-active raykit-ray") == "active"
    assert alive_ips() == sorted(sandbox.host_ip(sandbox.subnet_for(NAME), i) for i in (1, 2))
    rays = [n["labels"].get("raykit/ray") for n in ray_nodes() if n["state"] == "ALIVE"]
    assert rays == ["2.60.0", "2.60.0"], rays
    record = json.loads((CLUSTER_DIR / "switches.json").read_text())[-1]
    assert not record["ok"] and record["failures"][0]["host"] == WORKER and not record["left"]


def test_upgrade_to_another_ray_and_roll_back(full: str) -> None:
    before = {c: on(c, "readlink /opt/raykit/current") for c in (HEAD, WORKER)}
    up = raykit("upgrade", "-i", full, *RAY_2_59, timeout=1800)
    assert up.returncode == 0, up.stderr[-3000:]
    assert "Ray 2.60.0 -> 2.59.0" in said(up), up.stderr[-3000:]
    for c in (HEAD, WORKER):
        assert on(c, f"/opt/raykit/current/bin/python -c '{BOTH}'") == "3.13.5 2.59.0", c
        assert on(c, "readlink /opt/raykit/previous") == before[c]
    rays = [n["labels"].get("raykit/ray") for n in ray_nodes() if n["state"] == "ALIVE"]
    assert rays == ["2.59.0", "2.59.0"], rays
    smoke = raykit("smoke", "-i", full, *RAY_2_59)
    assert smoke.returncode == 0, smoke.stderr[-3000:]

    rb = raykit("rollback", "-i", full, timeout=1800)
    assert rb.returncode == 0, rb.stderr[-3000:]
    assert "Ray 2.59.0 -> 2.60.0" in said(rb), rb.stderr[-3000:]
    for c in (HEAD, WORKER):
        assert on(c, "readlink /opt/raykit/current") == before[c]
        assert on(c, f"/opt/raykit/current/bin/python -c '{BOTH}'") == "3.13.5 2.60.0", c
    assert alive_ips() == sorted(sandbox.host_ip(sandbox.subnet_for(NAME), i) for i in (1, 2))
