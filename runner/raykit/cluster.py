"""A deployed cluster as the runner sees it: its endpoints, its token, and a way to reach them.

`raykit up` ends by writing ``cluster.json`` beside the cluster's token on the control node
(playbooks/access.yml). The runner reads the inventory only for what that file cannot know:
which cluster the inventory names, and how to reach the head over SSH when the dashboard or
Prometheus is not directly reachable from here (then it opens an SSH tunnel).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ACCESS_FILE = "cluster.json"
DEFAULT_CLUSTER_NAME = "raykit"


class ClusterError(Exception):
    """The cluster cannot be used as asked: the message says why and what to do."""


@dataclass
class Cluster:
    inventory: str
    name: str
    access: dict[str, Any]
    hostvars: dict[str, dict[str, Any]]
    token: str = field(repr=False)

    @property
    def dashboard_url(self) -> str:
        return str(self.access["dashboard_url"])

    @property
    def prometheus_url(self) -> str | None:
        url = self.access.get("prometheus_url")
        return str(url) if url else None

    @property
    def head(self) -> str:
        return str(self.access["head"])

    @property
    def nodes(self) -> list[dict[str, str]]:
        return list(self.access.get("nodes") or [])

    @property
    def node_ips(self) -> list[str]:
        return [n["node_ip"] for n in self.nodes]


def _inventory_json(inventory: str) -> dict[str, Any]:
    """The inventory as Ansible reads it (`ansible-inventory --list`, through ansible-runner)."""
    import ansible_runner

    from raykit.playbooks import ansible_env

    path = Path(inventory).expanduser()
    if not path.exists():
        raise ClusterError(f"inventory {path} does not exist.")
    env = ansible_env()
    # ansible-runner looks its command up on this process's PATH: put this venv's tools first,
    # as activating the venv would.
    os.environ["PATH"] = env["PATH"]
    out, err = ansible_runner.get_inventory(
        "list", [str(path.resolve())], response_format="json", envvars=env, quiet=True
    )
    unparsed = [ln for ln in str(err).splitlines() if "Unable to parse" in ln]
    if unparsed or not isinstance(out, dict) or "_meta" not in out:
        lines = unparsed or str(err or out or "no output").strip().splitlines()
        raise ClusterError(f"cannot read the inventory {path}: {lines[-1] if lines else '?'}")
    return out


def _group_hosts(inv: Mapping[str, Any], group: str) -> list[str]:
    """Hosts of `group` including its children's, in inventory order."""
    seen: list[str] = []
    todo = [group]
    while todo:
        g = inv.get(todo.pop(0)) or {}
        for h in g.get("hosts", []):
            if h not in seen:
                seen.append(h)
        todo.extend(g.get("children", []))
    return seen


def secrets_dir(hostvars: Mapping[str, Any], name: str) -> Path:
    """Where `raykit up` keeps this cluster's token and cluster.json (raykit_secrets_dir)."""
    custom = hostvars.get("raykit_secrets_dir")
    if custom:
        if "{{" in str(custom) or "{%" in str(custom):
            raise ClusterError(
                f"raykit_secrets_dir is a template ({custom!r}): the runner reads it as a plain "
                "path. Set it to a literal path in the inventory."
            )
        return Path(str(custom)).expanduser()
    return Path.home() / ".config" / "raykit" / "clusters" / name


def load(inventory: str, *, inventory_json: Mapping[str, Any] | None = None) -> Cluster:
    """The cluster that `raykit up -i inventory` deployed, or a ClusterError saying what to do."""
    inv = dict(inventory_json) if inventory_json is not None else _inventory_json(inventory)
    hostvars: dict[str, dict[str, Any]] = inv.get("_meta", {}).get("hostvars", {})
    heads = _group_hosts(inv, "ray_head")
    if len(heads) != 1:
        raise ClusterError(
            f"the inventory {inventory} must have exactly one host in group ray_head "
            f"(found {len(heads)}: {', '.join(heads) or 'none'})."
        )
    head = heads[0]
    hv = hostvars.get(head, {})
    name = str(hv.get("raykit_cluster_name") or DEFAULT_CLUSTER_NAME)
    sdir = secrets_dir(hv, name)
    access_path = sdir / ACCESS_FILE
    up = f"raykit up -i {inventory}"
    try:
        access = json.loads(access_path.read_text())
    except FileNotFoundError:
        raise ClusterError(
            f"cluster {name!r} has not been deployed from this control node: {access_path} is "
            f"missing. Run `{up}` first."
        ) from None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot read {access_path}: {exc}. Run `{up}` again.") from None
    if access.get("schema") != 1:
        raise ClusterError(f"{access_path} has an unknown format. Run `{up}` again.")
    workers = _group_hosts(inv, "ray_worker")
    deployed = [n["name"] for n in access.get("nodes", [])]
    if access.get("head") != head or sorted(deployed) != sorted([head, *workers]):
        raise ClusterError(
            f"the inventory's nodes ({', '.join([head, *workers])}) differ from the deployed "
            f"cluster's ({', '.join(deployed)}). Run `{up}` to bring the cluster in line."
        )
    token_path = Path(str(access.get("token_file") or sdir / "ray_auth_token"))
    try:
        token = token_path.read_text().strip()
    except OSError as exc:
        raise ClusterError(
            f"cannot read the cluster's token {token_path}: {exc.strerror}. Run `{up}` (it "
            "keeps the token there), or run raykit as the user who deployed the cluster."
        ) from None
    if not token:
        raise ClusterError(f"the cluster's token {token_path} is empty. Run `{up}` again.")
    return Cluster(inventory=inventory, name=name, access=access, hostvars=hostvars, token=token)


# --------------------------------------------------------------------------------------------
# Reaching the endpoints: directly, or through an SSH tunnel via a host of the inventory
# --------------------------------------------------------------------------------------------


def reachable(url: str, timeout: float = 1.5) -> bool:
    """Does a TCP connection to the URL's host and port succeed?"""
    return _probe(url, timeout) == "open"


def _probe(url: str, timeout: float) -> str:
    """open; refused (the host answers, nothing listens: a tunnel would not help); or
    unreachable (no route, filtered, timed out: a tunnel through a host may help)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "unreachable"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_command(hostvars: Mapping[str, Any], host: str, local_port: int, target: str) -> list[str]:
    """`ssh -N -L` through `host`, with the inventory's connection settings for it."""
    hv = hostvars.get(host, {})
    address = str(hv.get("ansible_host") or host)
    user = hv.get("ansible_user") or hv.get("ansible_ssh_user")
    cmd = [
        "ssh",
        "-N",
        "-o",
        "BatchMode=yes",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=15",
        "-L",
        f"127.0.0.1:{local_port}:{target}",
    ]
    port = hv.get("ansible_port") or hv.get("ansible_ssh_port")
    if port:
        cmd += ["-p", str(port)]
    key = hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
    if key:
        cmd += ["-i", str(Path(str(key)).expanduser())]
    for opts in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if hv.get(opts):
            cmd += shlex.split(str(hv[opts]))
    cmd.append(f"{user}@{address}" if user else address)
    return cmd


@dataclass
class Tunnel:
    process: subprocess.Popen[bytes]
    url: str

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


def open_tunnel(
    hostvars: Mapping[str, Any], host: str, url: str, *, timeout: float = 20.0
) -> Tunnel:
    """Forward a local port to `url`'s host:port as seen from `host`; the local URL to use."""
    parts = urlsplit(url)
    local = _free_port()
    cmd = ssh_command(hostvars, host, local, f"{parts.hostname}:{parts.port or 80}")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    local_url = urlunsplit((parts.scheme, f"127.0.0.1:{local}", parts.path, "", ""))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = (proc.stderr.read().decode(errors="replace") if proc.stderr else "").strip()
            Tunnel(proc, "").close()
            raise ClusterError(
                f"cannot open an SSH tunnel to {url} through {host}: "
                f"{err.splitlines()[-1] if err else f'ssh exited with {proc.returncode}'}"
                f" (command: {shlex.join(cmd)})"
            )
        if reachable(local_url, timeout=0.5):
            return Tunnel(proc, local_url)
        time.sleep(0.1)
    Tunnel(proc, local_url).close()
    raise ClusterError(f"the SSH tunnel to {url} through {host} did not open in {timeout:.0f} s.")


@contextlib.contextmanager
def endpoint(
    cluster: Cluster,
    url: str,
    via: str,
    mode: str = "auto",
    notes: list[str] | None = None,
    *,
    secret: bool = False,
) -> Iterator[str]:
    """The URL to use for `url`: itself in mode never, or in mode auto when the host answers
    (a service that is down is reported as such, not hidden behind a tunnel); else a tunnel
    through host `via`, closed when the block ends. A `secret` endpoint (the token travels in
    its HTTP header) is reached directly in mode auto only when the cluster was deployed with
    raykit_trusted_addresses (cluster.json's jobs_api_direct): else always through the tunnel,
    so the token never crosses the network in clear."""
    trusted = bool(cluster.access.get("jobs_api_direct", False))
    direct_ok = not secret or trusted
    if mode == "never" or (mode == "auto" and direct_ok and _probe(url, 1.5) != "unreachable"):
        yield url
        return
    tunnel = open_tunnel(cluster.hostvars, via, url)
    if notes is not None:
        why = "" if direct_ok else ": the token never crosses the network in clear"
        notes.append(f"{url} reached through an SSH tunnel via {via} ({tunnel.url}){why}")
    try:
        yield tunnel.url
    finally:
        tunnel.close()


def open_endpoints(
    cluster: Cluster, stack: contextlib.ExitStack, mode: str, notes: list[str]
) -> tuple[str, str | None]:
    """The URLs to use for the dashboard and Prometheus (None: no monitoring), each direct or
    through a tunnel that `stack` closes. The dashboard must be reached (ClusterError); a
    Prometheus tunnel that cannot open is a note, and its URL stays as it is, unreachable,
    for the callers to report."""
    dash = stack.enter_context(
        endpoint(cluster, cluster.dashboard_url, cluster.head, mode, notes, secret=True)
    )
    prom = cluster.prometheus_url
    if prom:
        via = str(cluster.access.get("monitoring_host") or cluster.head)
        try:
            prom = stack.enter_context(endpoint(cluster, prom, via, mode, notes))
        except ClusterError as exc:
            notes.append(f"Prometheus: {exc}")
    return dash, prom
