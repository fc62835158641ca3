"""raykit_probe: is this host already what the role would make of it? One round trip.

A role's converge is dozens of tasks, each a round trip that compares one file or one unit and
changes nothing on a host that is in state. This action reads the whole of a role's state at
once: on the control node it works out what each managed file should hold (a template's
output passed as ``content``, a role file as ``src``, a control-node file as ``local``) and
checks the control node's certificates; on the host the ``raykit_state`` module reads every path
(type, checksum, owner, group, mode, link target), every unit (loaded, active, enabled, no
pending daemon-reload), every user and every read-only check command. The result lists what
differs, one line each (``diffs``; never a file's content); ``in_state`` is true when nothing
does, and the role then skips its tasks. Anything the probe cannot read counts as a difference,
so the full tasks run: the fast path is never taken on a guess.

    - name: Probe the node's state
      raykit_probe:
        files:
          - {path: /etc/raykit/ray.env, content: "{{ lookup('template', 'ray.env.j2') }}",
             owner: root, group: ray, mode: "0640"}
          - {path: /opt/raykit/libexec/supervise.py, src: supervise.py, mode: "0644"}
          - {path: /etc/raykit, state: directory, owner: root, group: ray, mode: "0750"}
        units: [{name: raykit-ray, active: true, enabled: true}]
        users: [ray]
        checks: [{name: the table, argv: [nft, list, table, inet, raykit]}]
        certs: [{cert: ~/.raykit/tls/n1.crt, key: ~/.raykit/tls/n1.key, ca: ~/.raykit/tls/ca.crt,
                 ips: [10.0.0.1]}]
      register: probe
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

FILE_KEYS = ("path", "state", "owner", "group", "mode", "target")


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 -- a checksum, as copy/template use


def cert_diffs(spec: dict[str, Any], now: datetime.datetime | None = None) -> list[str]:
    """A control-node certificate is there, unexpired, for these addresses, made for this key
    and signed by this CA; else what is wrong with it (one line)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    cert_path = Path(spec["cert"]).expanduser()
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(Path(spec["ca"]).expanduser().read_bytes())
        key = serialization.load_pem_private_key(
            Path(spec["key"]).expanduser().read_bytes(), password=None
        )
    except (OSError, ValueError) as exc:
        return [f"{cert_path}: cannot be read ({exc.__class__.__name__})"]
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc <= now:
        return [f"{cert_path}: expired on {cert.not_valid_after_utc:%Y-%m-%d}"]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
        return [f"{cert_path}: not made for its key"]
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return [f"{cert_path}: not signed by the cluster CA"]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        have = set()
    missing = [ip for ip in spec.get("ips", []) if str(ipaddress.ip_address(ip)) not in have]
    if missing:
        return [f"{cert_path}: not made for {', '.join(missing)}"]
    return []


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        diffs: list[str] = []
        files: list[dict[str, Any]] = []
        for item in args.get("files") or []:
            want = {k: str(item[k]) for k in FILE_KEYS if item.get(k) is not None}
            if "path" not in want:
                raise AnsibleError(f"raykit_probe: a file without a path: {sorted(item)}")
            if "content" in item:
                want["sha1"] = sha1(str(item["content"]).encode())
            elif "src" in item:
                want["sha1"] = sha1(Path(self._find_needle("files", item["src"])).read_bytes())
            elif "local" in item:
                local = Path(str(item["local"])).expanduser()
                if not local.is_file():
                    diffs.append(f"{local} (control node): missing")
                    continue
                want["sha1"] = sha1(local.read_bytes())
            files.append(want)
        for spec in args.get("certs") or []:
            diffs.extend(cert_diffs(spec))
        remote = self._execute_module(
            module_name="raykit_state",
            module_args={
                "files": files,
                "units": list(args.get("units") or []),
                "users": list(args.get("users") or []),
                "checks": list(args.get("checks") or []),
            },
            task_vars=task_vars,
        )
        if remote.get("failed"):
            diffs.append(f"the probe failed: {remote.get('msg', 'no message')}")
        else:
            diffs.extend(remote.get("diffs") or [])
        result.update(changed=False, diffs=diffs, in_state=not diffs)
        return result
