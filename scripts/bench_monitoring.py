"""Monitoring timings on a fresh sandbox: how long after the converge every target is up.

Prints numbers; asserts nothing about them. Uses its own sandbox (raykit-test-mon-bench) and
the tarball install path with a *local* archive: the official Prometheus release cannot be
downloaded on this project's machines, so `repack_debian_prometheus()` puts the binaries of
Debian's `prometheus` package into the official archive's layout
(`prometheus-<version>.linux-<arch>/prometheus, promtool, ...`), under a version that says
what it is (`2.42.0+debian-repack` on Debian 12). The integration test uses it too.

    .venv/bin/python scripts/bench_monitoring.py [--hosts 2] [--scale-out] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "raykit-test-mon-bench"
PROMETHEUS_PORT = 9090
LIMIT = 180.0  # seconds: the polling stops by itself

_NOTE = """\
This is NOT an official Prometheus release archive.

It holds the prometheus and promtool binaries of Debian's `prometheus` package {deb_version},
repacked by raykit's tests into the layout of the official release archive, so that raykit's
tarball install path can be exercised on machines that cannot download the official one.
"""


def _apt_download(package: str, into: Path) -> Path:
    """`apt-get download PACKAGE` into a directory (refreshing the index once if needed)."""
    for attempt in range(2):
        proc = subprocess.run(
            ["apt-get", "download", package],
            cwd=into,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = sorted(into.glob(f"{package}_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[-1]
        if attempt == 0:
            subprocess.run(["apt-get", "update"], capture_output=True, check=False)
    raise RuntimeError(f"apt-get download {package} failed: {proc.stderr.strip()[-500:]}")


def repack_debian_prometheus(workdir: Path) -> dict[str, str]:
    """Build a Prometheus archive in the official layout from Debian's package.

    Returns {"version", "arch", "archive", "sha256", "mirror"}: the archive is
    <mirror>/prometheus-<version>.linux-<arch>.tar.gz, `mirror` a file:// URL.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    deb = _apt_download("prometheus", workdir)
    deb_version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    arch = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    semver = re.match(r"\d+\.\d+\.\d+", deb_version)
    if not semver:
        raise RuntimeError(f"unexpected version of Debian's prometheus: {deb_version}")
    version = f"{semver.group()}+debian-repack"
    extracted = workdir / "deb"
    shutil.rmtree(extracted, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)
    top = f"prometheus-{version}.linux-{arch}"
    layout = workdir / "layout" / top
    shutil.rmtree(layout.parent, ignore_errors=True)
    layout.mkdir(parents=True)
    for binary in ("prometheus", "promtool"):
        shutil.copy2(extracted / "usr" / "bin" / binary, layout / binary)
    shutil.copy2(extracted / "etc" / "prometheus" / "prometheus.yml", layout / "prometheus.yml")
    notice = extracted / "usr" / "share" / "doc" / "prometheus" / "NOTICE"
    if notice.exists():
        shutil.copy2(notice, layout / "NOTICE")
    (layout / "README.raykit-repack").write_text(_NOTE.format(deb_version=deb_version))
    mirror = workdir / "mirror"
    mirror.mkdir(exist_ok=True)
    archive = mirror / f"{top}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(layout, arcname=top)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    return {
        "version": version,
        "arch": arch,
        "archive": str(archive),
        "sha256": digest,
        "mirror": mirror.as_uri(),
        "deb_version": deb_version,
    }


def tarball_extra_vars(repack: dict[str, str]) -> dict[str, Any]:
    """The extra vars that make site.yml install the repacked archive (tarball path)."""
    return {
        "prometheus_source": "tarball",
        "raykit_prometheus_version": repack["version"],
        "raykit_prometheus_sha256": {repack["version"]: {repack["arch"]: repack["sha256"]}},
        "raykit_prometheus_mirrors": [repack["mirror"]],
    }


def playbook(inv: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inv), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    return time.monotonic() - start, proc


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))


def monitoring_address(inv: Path) -> str:
    """The cluster address of the first monitoring host (the head when the group is empty)."""
    data = yaml.safe_load(inv.read_text())["all"]
    children = data.get("children") or {}
    group = (children.get("monitoring") or {}).get("hosts") or children["ray_head"]["hosts"]
    host = next(iter(group))
    return str(data["hosts"][host]["raykit_node_ip"])


def query(address: str, promql: str, timeout: float = 5) -> list[dict[str, Any]]:
    """An instant PromQL query against Prometheus' HTTP API; the result vector."""
    url = f"http://{address}:{PROMETHEUS_PORT}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"query {promql!r}: {body}")
    return list(body["data"]["result"])


def node_targets_up(address: str, hosts: list[str]) -> bool:
    up = {
        r["metric"].get("host"): r["value"][1]
        for r in query(address, 'up{job="ray",exporter="node"}')
    }
    return all(up.get(h) == "1" for h in hosts)


def every_target_up(address: str, count: int) -> bool:
    rows = query(address, 'up{job="ray"}')
    return len(rows) == count and all(r["value"][1] == "1" for r in rows)


def cpu_for_every_node(address: str, hosts: list[str]) -> bool:
    seen = {r["metric"].get("host") for r in query(address, "ray_node_cpu_utilization")}
    return set(hosts) <= seen


def inventory_hosts(inv: Path) -> list[str]:
    children = yaml.safe_load(inv.read_text())["all"]["children"]
    return [*children["ray_head"]["hosts"], *(children.get("ray_worker", {}).get("hosts") or {})]


def measure_after_converge(inv: Path, rows: list[tuple[str, float | None, str]], tag: str) -> None:
    """Poll right after a converge; when each condition first held, in seconds after its end."""
    address = monitoring_address(inv)
    hosts = inventory_hosts(inv)
    endpoints = len(hosts) + 2  # every node's metrics port, and the head's two extra ones
    conditions = {
        "every node's metrics target up": lambda: node_targets_up(address, hosts),
        "every target up (nodes + head extras)": lambda: every_target_up(address, endpoints),
        "ray_node_cpu_utilization for every node": lambda: cpu_for_every_node(address, hosts),
    }
    first: dict[str, float] = {}
    start = time.monotonic()
    while len(first) < len(conditions) and time.monotonic() - start < LIMIT:
        for label, check in conditions.items():
            if label in first:
                continue
            try:
                if check():
                    first[label] = time.monotonic() - start
            except OSError:
                pass
        time.sleep(0.25)
    notes = [f"{len(hosts)} nodes", f"{endpoints} targets", ""]
    for (label, _), note in zip(conditions.items(), notes, strict=True):
        rows.append((f"{tag}: {label}", first.get(label), note))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--scale-out", action="store_true", help="then add a host and re-run")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    args = parser.parse_args()

    from raykit import sandbox  # the control node's venv

    rows: list[tuple[str, float | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="raykit-bench-mon-") as tmp:
        t0 = time.monotonic()
        repack = repack_debian_prometheus(Path(tmp) / "repack")
        rows.append(
            (
                f"local archive from Debian's prometheus {repack['deb_version']}",
                time.monotonic() - t0,
                repack["version"],
            )
        )
        extra = Path(tmp) / "extra.json"
        extra.write_text(json.dumps(tarball_extra_vars(repack)))
        try:
            sandbox.down(name=NAME)
            inv = sandbox.up(name=NAME, hosts=args.hosts)
            secs, proc = playbook(inv, "site.yml", "-e", f"@{extra}")
            if proc.returncode != 0:
                sys.stdout.write(proc.stdout[-4000:])
                raise SystemExit(f"site.yml failed (rc {proc.returncode})")
            rows.append(
                (f"converge, {args.hosts} fresh hosts", secs, f"{changed(proc.stdout)} changed")
            )
            measure_after_converge(inv, rows, "after the converge")
            secs, proc = playbook(inv, "site.yml", "-e", f"@{extra}")
            rows.append(("re-run", secs, f"{changed(proc.stdout)} changed"))
            if args.scale_out:
                inv = sandbox.up(name=NAME, hosts=args.hosts + 1)
                secs, proc = playbook(inv, "site.yml", "-e", f"@{extra}")
                if proc.returncode != 0:
                    sys.stdout.write(proc.stdout[-4000:])
                    raise SystemExit(f"site.yml (scale-out) failed (rc {proc.returncode})")
                rows.append(
                    ("scale-out converge, +1 host", secs, f"{changed(proc.stdout)} changed")
                )
                measure_after_converge(inv, rows, "after the scale-out")
        finally:
            if not args.keep:
                sandbox.down(name=NAME)
            cache = Path(os.environ.get("RAYKIT_CACHE_DIR", Path.home() / ".cache" / "raykit"))
            (cache / "prometheus" / Path(repack["archive"]).name).unlink(missing_ok=True)
    width = max(len(r[0]) for r in rows)
    print(f"\nraykit monitoring benchmark ({os.cpu_count()} cores; seconds)")
    for label, secs, note in rows:
        shown = f"not within {LIMIT:.0f} s" if secs is None else f"{secs:7.1f} s"
        print(f"  {label:<{width}}  {shown}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
