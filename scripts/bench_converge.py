"""Converge timings on fresh sandbox hosts, raykit and Ray's own `ray up` side by side.

For each size (default 1, 3 and 6 hosts), in one run, on the same kind of fresh hosts:

- raykit: `site.yml` cold (pinned CPython, venv from the local wheelhouse, the version gate,
  firewall, Ray, Prometheus, cluster.json), then a re-run with nothing to do (changed=0 is
  checked and printed);
- `ray up` (the cluster launcher, local provider, same hosts): its setup commands unpack the
  same CPython build and install the same wheelhouse with the same uv, offline; timed from
  `ray up` until every node is ALIVE in Ray's state API; then `ray up` again (it restarts Ray
  on every node) until every node is ALIVE again, and `ray up --no-restart`.

Prints numbers and the ratios; asserts nothing about them. Uses its own sandbox
(raykit-bench) and its own `ray up` cluster name; the artifact cache must be warm (a `make
demo` or any converge fills it).

    .venv/bin/python scripts/bench_converge.py [--sizes 1,3,6] [--skip-ray-up] [--ray-up-env K=V]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from raykit import sandbox

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "raykit-bench"
RAYUP_CLUSTER = "raykit-bench-rayup"
CACHE = Path(os.environ.get("RAYKIT_CACHE_DIR", Path.home() / ".cache" / "raykit"))
ALIVE_TIMEOUT = 300.0
OBJECT_STORE = 536870912  # as the sandbox inventory sets for raykit (1 GiB /dev/shm per host)


def playbook(inv: Path, *books: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inv), *books],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit(f"{' '.join(books)} failed (rc {proc.returncode})")
    return seconds, proc.stdout


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))


def podman(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"podman {' '.join(args[:3])} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def raykit_side(hosts: int) -> dict[str, Any]:
    sandbox.down(name=NAME)
    inv = sandbox.up(name=NAME, hosts=hosts)
    try:
        cold, out = playbook(inv, "site.yml")
        cold_changed = changed(out)
        noop, out = playbook(inv, "site.yml")
        return {
            "cold": cold,
            "cold_changed": cold_changed,
            "noop": noop,
            "noop_changed": changed(out),
        }
    finally:
        sandbox.down(name=NAME)


# ----------------------------------------------------------------------------- ray up


def cached(pattern: str) -> Path:
    found = sorted(CACHE.glob(pattern))
    if not found:
        raise SystemExit(f"{CACHE}/{pattern}: not in the artifact cache; run `make demo` first")
    return found[-1]


def pins() -> dict[str, Any]:
    paths = yaml.safe_load((REPO / "roles/raykit/defaults/main/paths.yml").read_text())
    versions = yaml.safe_load((REPO / "roles/raykit/defaults/main/versions.yml").read_text())
    libs = {
        v: yaml.safe_load((REPO / f"roles/python_runtime/vars/Debian-{v}.yml").read_text())[
            "_python_runtime_libs"
        ]
        for v in ("12", "13")
    }
    return {
        "prefix": paths["raykit_prefix"],
        "python": versions["raykit_python_version"],
        "libs": libs,
    }


def setup_script(python_dir: str, wheels: str, libs: dict[str, list[str]]) -> str:
    """What `ray up` runs on every node: the interpreter raykit would install (the same build,
    at the same path, the same shared libraries from apt when missing), then a venv with the
    same lock from the same wheelhouse, with the same uv, offline, hashes required."""
    py = f"{python_dir}/bin/python3"
    return " && ".join(
        [
            "set -e",
            f'. /etc/os-release; case "$VERSION_ID" in 12) L="{" ".join(libs["12"])}";; '
            f'*) L="{" ".join(libs["13"])}";; esac',
            "dpkg -s $L >/dev/null 2>&1 || (sudo apt-get update -qq && sudo DEBIAN_FRONTEND="
            "noninteractive apt-get install -y -qq --no-install-recommends $L >/dev/null)",
            f"test -x {py} || (sudo mkdir -p {python_dir} && sudo tar -xzf "
            f"~/rayup/python.tar.gz -C {python_dir} --strip-components=1)",
            "test -x ~/venv/bin/ray || (mkdir -p ~/wh && tar -xf ~/rayup/wheelhouse.tar -C ~/wh"
            f" && ~/rayup/uv venv --no-config --python {py} ~/venv && ~/rayup/uv pip install"
            " --no-config --offline --no-index --no-cache --require-hashes"
            f" --find-links ~/wh/{wheels} --python ~/venv/bin/python"
            f" -r ~/wh/{wheels}/requirements.lock && rm -rf ~/wh)",
        ]
    )


def rayup_config(ips: list[str], key: Path, env: dict[str, str]) -> dict[str, Any]:
    p = pins()
    wheelhouse = cached("wheelhouse/*.tar")
    python = cached(f"python/cpython-{p['python']}-*.tar.gz")
    uv = cached("uv/*/uv")
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())
    return {
        "cluster_name": RAYUP_CLUSTER,
        "provider": {"type": "local", "head_ip": ips[0], "worker_ips": ips[1:]},
        "auth": {"ssh_user": sandbox.SSH_USER, "ssh_private_key": str(key)},
        "file_mounts": {
            "~/rayup/python.tar.gz": str(python),
            "~/rayup/wheelhouse.tar": str(wheelhouse),
            "~/rayup/uv": str(uv),
        },
        "setup_commands": [
            setup_script(
                f"{p['prefix']}/python/{p['python']}",
                wheelhouse.name.removesuffix(".tar"),
                p["libs"],
            )
        ],
        "head_start_ray_commands": [
            "~/venv/bin/ray stop",
            f"{exports}ulimit -n 65536; ~/venv/bin/ray start --head --port=6379"
            f" --object-store-memory={OBJECT_STORE} --disable-usage-stats"
            " --autoscaling-config=~/ray_bootstrap_config.yaml",
        ],
        "worker_start_ray_commands": [
            "~/venv/bin/ray stop",
            f"~/venv/bin/ray start --address=$RAY_HEAD_IP:6379 --object-store-memory={OBJECT_STORE}"
            " --disable-usage-stats",
        ],
    }


ALIVE = (
    "import json,urllib.request as u\n"
    "try:\n"
    " d=json.load(u.urlopen('http://127.0.0.1:8265/api/v0/nodes?limit=1000',timeout=5))\n"
    " print(sum(n['state']=='ALIVE' for n in d['data']['result']['result']))\n"
    "except Exception:\n"
    " print(0)\n"
)


def alive(head: str) -> int:
    out = podman("exec", head, "python3", "-c", ALIVE, check=False).strip()
    return int(out) if out.isdigit() else 0


def until_alive(head: str, want: int, start: float, timeout: float) -> tuple[float | None, int]:
    """Seconds from `start` until `want` nodes are ALIVE (None after `timeout`), and the most
    seen alive."""
    best = 0
    while time.monotonic() - start < timeout:
        best = max(best, n := alive(head))
        if n >= want:
            return time.monotonic() - start, best
        time.sleep(1)
    return None, best


def ray_cmd(*args: str, config: Path) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "ray"), *args, "-y", str(config)],
        capture_output=True, text=True, check=False, cwd=config.parent,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.stdout.write((proc.stdout + proc.stderr)[-4000:])
        raise SystemExit(f"ray {' '.join(args)} failed (rc {proc.returncode})")
    return time.monotonic() - start


def ensure_rsync() -> None:
    """`ray up` copies its file mounts with rsync, from this machine too."""
    if shutil.which("rsync") is None:
        print("bench: installing rsync (apt-get), which `ray up` needs", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "check": True}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)  # type: ignore[call-overload]
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "rsync"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            **quiet,  # type: ignore[arg-type]
        )


def rayup_side(hosts: int, env: dict[str, str], timeout: float) -> dict[str, Any]:
    ensure_rsync()
    sandbox.down(name=NAME)
    inv = sandbox.up(name=NAME, hosts=hosts)
    inventory = yaml.safe_load(inv.read_text())
    names = list(inventory["all"]["hosts"])
    ips = [inventory["all"]["hosts"][n]["ansible_host"] for n in names]
    # `ray up` needs rsync on both ends (its file mounts); the sandbox image has none.
    # Installed before the clock starts, as a host prepared for `ray up` would have it.
    for node in names:
        podman("exec", node, "sh", "-c", "command -v rsync >/dev/null || "
               "(apt-get update -qq && apt-get install -y -qq rsync >/dev/null)")  # fmt: skip
    # `ray up`'s record of the cluster's nodes, on this machine (ray's get_state_path).
    state = Path(tempfile.gettempdir()) / "ray" / f"cluster-{RAYUP_CLUSTER}.state"
    state.unlink(missing_ok=True)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="raykit-bench-rayup-") as tmp:
        config = Path(tmp) / "cluster.yaml"
        config.write_text(yaml.safe_dump(rayup_config(ips, sandbox.key_path(NAME), env)))
        try:
            start = time.monotonic()
            result["up_cmd"] = ray_cmd("up", "--no-config-cache", config=config)
            result["cold"], result["cold_best"] = until_alive(names[0], hosts, start, timeout)
            start = time.monotonic()
            result["rerun_cmd"] = ray_cmd("up", config=config)
            result["rerun"], result["rerun_best"] = until_alive(names[0], hosts, start, timeout)
            result["norestart"] = ray_cmd("up", "--no-restart", config=config)
        finally:
            subprocess.run(
                [str(BIN / "ray"), "down", "-y", str(config)],
                capture_output=True, text=True, check=False, timeout=300,
            )  # fmt: skip
            state.unlink(missing_ok=True)
            sandbox.down(name=NAME)
    return result


def fmt(secs: float | None, note: str = "") -> str:
    return f"{secs:7.1f} s{note}" if secs is not None else "   never"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:5.2f}x" if a and b else "    -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,3,6", help="host counts, comma-separated")
    parser.add_argument("--skip-ray-up", action="store_true")
    parser.add_argument(
        "--skip-raykit", action="store_true", help="only `ray up` (to try a setting)"
    )
    parser.add_argument(
        "--ray-up-env",
        action="append",
        default=[],
        metavar="K=V",
        help="an environment variable for the head's `ray start` (the autoscaler), repeatable",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--alive-timeout",
        type=float,
        default=ALIVE_TIMEOUT,
        help="how long to wait for every node to be ALIVE after `ray up` (s)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    env = dict(kv.split("=", 1) for kv in args.ray_up_env)
    rows: dict[int, dict[str, Any]] = {}
    for n in sizes:
        rows[n] = {} if args.skip_raykit else {"raykit": raykit_side(n)}
        if not args.skip_raykit:
            print(f"raykit, {n} hosts: {json.dumps(rows[n]['raykit'])}", flush=True)
        if not args.skip_ray_up:
            rows[n]["ray_up"] = rayup_side(n, env, args.alive_timeout)
            print(f"ray up, {n} hosts: {json.dumps(rows[n]['ray_up'])}", flush=True)
    if args.skip_raykit:
        return 0
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2) + "\n")

    print(
        f"\nconverge benchmark ({os.cpu_count()} cores, fresh sandbox hosts, warm artifact cache)"
    )
    print(
        "  raykit  = site.yml: pinned CPython, venv from the local wheelhouse, version gate,\n"
        "            nftables firewall, Ray (token, TLS), Prometheus, cluster.json\n"
        "  ray up  = Ray's cluster launcher, local provider: the same CPython build and\n"
        "            wheelhouse (uv, offline), `ray start` on every node; no gate, firewall,\n"
        "            TLS, token or monitoring\n"
        f"  ray up env: {env or 'default autoscaler'}"
    )
    head = (
        f"  {'hosts':>5} | {'raykit cold':>11} | {'ray up cold':>11} | {'ratio':>6} |"
        f" {'raykit no-op':>12} | {'ray up re-run':>13} | {'ratio':>6} | {'--no-restart':>12}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for n, row in rows.items():
        rk, ru = row["raykit"], row.get("ray_up", {})
        note = f"{ru.get('cold_best', '-')}/{n} alive" if ru and ru.get("cold") is None else ""
        print(
            f"  {n:>5} | {rk['cold']:9.1f} s | {fmt(ru.get('cold')):>11} | "
            f"{ratio(rk['cold'], ru.get('cold')):>6} | {rk['noop']:8.1f} s   | "
            f"{fmt(ru.get('rerun')):>13} | {ratio(rk['noop'], ru.get('rerun')):>6} | "
            f"{fmt(ru.get('norestart')):>12} {note}"
        )
    for n, row in rows.items():
        rk = row["raykit"]
        print(f"  raykit {n} hosts: cold changed={rk['cold_changed']}, no-op {rk['noop_changed']}")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        a, b = rows[hi]["raykit"], rows[lo]["raykit"]
        print(
            f"  growth t({hi})/t({lo}): raykit cold {a['cold'] / b['cold']:.2f},"
            f" no-op {a['noop'] / b['noop']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
