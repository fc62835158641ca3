"""The fast path's probe: plugins/modules/raykit_state.py (what it reads on a host and calls a
difference) and plugins/action/raykit_probe.py (the control node's certificates), on real files
and real certificates made here; and the state lists in the roles' vars, against the tasks that
write those paths (a path a task manages but the probe does not read would go unchecked)."""

from __future__ import annotations

import datetime
import getpass
import grp
import hashlib
import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO, load_by_path

state = load_by_path(REPO / "plugins" / "modules" / "raykit_state.py", "raykit_state")
probe = load_by_path(REPO / "plugins" / "action" / "raykit_probe.py", "raykit_probe")
ME = getpass.getuser()
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "ray.env"
    path.write_bytes(b"RAY_X=1\n")
    path.chmod(0o640)
    return path


def want(path: Path, **extra: Any) -> dict[str, Any]:
    base = {"path": str(path), "sha1": sha1(b"RAY_X=1\n"), "owner": ME, "group": MY_GROUP}
    return {**base, "mode": "0640", **extra}


def test_a_file_in_state_has_no_difference(conf: Path) -> None:
    assert state.file_diffs(want(conf)) == []


def test_content_mode_owner_and_group_each_differ(conf: Path) -> None:
    conf.write_bytes(b"RAY_X=2\n")
    conf.chmod(0o644)
    diffs = state.file_diffs(want(conf, owner="nobody-here", group="nogroup-here"))
    assert diffs == [
        f"{conf}: content differs",
        f"{conf}: owner {ME}, should be nobody-here",
        f"{conf}: group {MY_GROUP}, should be nogroup-here",
        f"{conf}: mode 0644, should be 0640",
    ]


def test_missing_present_and_wrong_kind(conf: Path, tmp_path: Path) -> None:
    assert state.file_diffs({"path": str(tmp_path / "nope")}) == [f"{tmp_path}/nope: missing"]
    assert state.file_diffs({"path": str(tmp_path / "nope"), "state": "absent"}) == []
    assert state.file_diffs({"path": str(conf), "state": "absent"}) == [
        f"{conf}: present, should be absent"
    ]
    assert state.file_diffs({"path": str(conf), "state": "directory"}) == [
        f"{conf}: not a directory"
    ]
    assert state.file_diffs({"path": str(tmp_path), "state": "directory"}) == []


def test_a_link_points_where_it_should(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    link = {"path": str(tmp_path / "current"), "state": "link"}
    assert state.file_diffs({**link, "target": str(tmp_path / "v1")}) == []
    assert state.file_diffs({**link, "target": str(tmp_path / "v2")}) == [
        f"{tmp_path}/current: points at {tmp_path}/v1, should point at {tmp_path}/v2"
    ]
    assert state.file_diffs({"path": str(tmp_path / "v1"), "state": "link"}) == [
        f"{tmp_path}/v1: not a link"
    ]


SHOW = """Id=raykit-ray.service
LoadState=loaded
ActiveState=active
UnitFileState=enabled
NeedDaemonReload=no

Id=raykit-firewall.service
LoadState=loaded
ActiveState=inactive
UnitFileState=disabled
NeedDaemonReload=yes

Id=prometheus.service
LoadState=masked
ActiveState=inactive
UnitFileState=masked
NeedDaemonReload=no

Id=gone.service
LoadState=not-found
ActiveState=inactive
UnitFileState=
NeedDaemonReload=no
"""


def test_units_active_enabled_masked_and_reloaded() -> None:
    shown = state.parse_show(SHOW)
    assert sorted(shown) == [
        "gone.service",
        "prometheus.service",
        "raykit-firewall.service",
        "raykit-ray.service",
    ]
    assert state.unit_diffs([{"name": "raykit-ray"}], shown) == []
    assert state.unit_diffs([{"name": "prometheus.service", "masked": True}], shown) == []
    assert state.unit_diffs([{"name": "raykit-firewall"}], shown) == [
        "raykit-firewall.service: its file changed since systemd read it",
        "raykit-firewall.service: inactive, should be active",
        "raykit-firewall.service: disabled, should be enabled",
    ]
    assert state.unit_diffs([{"name": "raykit-ray", "masked": True}], shown) == [
        "raykit-ray.service: enabled and active, should be masked and stopped"
    ]
    assert state.unit_diffs([{"name": "gone"}], shown) == ["gone.service: not loaded (not-found)"]
    assert state.unit_diffs([{"name": "never-shown"}], shown) == [
        "never-shown.service: not loaded (unknown)"
    ]


# ------------------------------------------------------------------ certificates (control node)


def make_pki(
    tmp_path: Path, ip: str = "10.0.0.1", days: int = 30, sign_with_ca: bool = True
) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)

    def issued_by_ca(cn: str, key: ec.EllipticCurvePrivateKey, serial: int, days: int) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name("ca"))
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issued_by_ca("ca", ca_key, 1, 3650).sign(ca_key, hashes.SHA256())
    key = ec.generate_private_key(ec.SECP256R1())
    signer = ca_key if sign_with_ca else ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
    cert = (
        issued_by_ca("node", key, 2, days)
        .add_extension(san, critical=False)
        .sign(signer, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(pem))
    (tmp_path / "n.crt").write_bytes(cert.public_bytes(pem))
    (tmp_path / "n.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {
        "cert": str(tmp_path / "n.crt"),
        "key": str(tmp_path / "n.key"),
        "ca": str(tmp_path / "ca.crt"),
        "ips": [ip],
    }


def test_a_good_certificate_has_no_difference(tmp_path: Path) -> None:
    assert probe.cert_diffs(make_pki(tmp_path)) == []


def test_a_certificate_for_another_address(tmp_path: Path) -> None:
    spec = {**make_pki(tmp_path), "ips": ["10.0.0.1", "10.0.0.2"]}
    assert probe.cert_diffs(spec) == [f"{tmp_path}/n.crt: not made for 10.0.0.2"]


def test_an_expired_certificate(tmp_path: Path) -> None:
    spec = make_pki(tmp_path, days=30)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=31)
    assert probe.cert_diffs(spec, now=later)[0].startswith(f"{tmp_path}/n.crt: expired on ")


def test_a_certificate_not_signed_by_the_ca(tmp_path: Path) -> None:
    spec = make_pki(tmp_path, sign_with_ca=False)
    assert probe.cert_diffs(spec) == [f"{tmp_path}/n.crt: not signed by the cluster CA"]


def test_a_certificate_of_another_key_or_none(tmp_path: Path) -> None:
    spec = make_pki(tmp_path)
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")
    assert probe.cert_diffs({**spec, "key": other["key"]}) == [
        f"{tmp_path}/n.crt: not made for its key"
    ]
    assert probe.cert_diffs({**spec, "cert": str(tmp_path / "none.crt")}) == [
        f"{tmp_path}/none.crt: cannot be read (FileNotFoundError)"
    ]


# ------------------------------------------------------- the state lists against the tasks


def managed_paths(tasks_file: Path) -> dict[str, str | None]:
    """Every path a file/copy/template task of `tasks_file` writes, as written in the task
    (unrendered), with the mode it sets."""
    found: dict[str, str | None] = {}
    for task in yaml.safe_load(tasks_file.read_text()) or []:
        for module in ("ansible.builtin.file", "ansible.builtin.copy", "ansible.builtin.template"):
            args = task.get(module)
            if not isinstance(args, dict):
                continue
            dest = args.get("dest") or args.get("path")
            if dest == "{{ item.path }}":
                for item in task["loop"]:
                    found[item["path"]] = item.get("mode", args.get("mode"))
            elif dest and "{{ item" not in dest:
                found[dest] = args.get("mode")
            elif dest:  # dest built from a loop item: one path per item
                for item in task["loop"]:
                    path = dest.replace("{{ item.dest }}", item["dest"])
                    found[path] = item.get("mode", args.get("mode"))
    return found


def probed(vars_file: Path, key: str) -> dict[str, str | None]:
    data = yaml.safe_load(vars_file.read_text())
    entries = data[key]
    files = entries["files"] if isinstance(entries, dict) else entries
    return {e["path"]: e.get("mode") for e in files}


@pytest.mark.parametrize(
    ("tasks", "vars_file", "key", "not_probed"),
    [
        # The TLS files are in _ray_node_state_tls (a Jinja list); the restart marker is
        # probed as absent (its presence means a restart is pending).
        (
            "roles/ray_node/tasks/configure_node.yml",
            "roles/ray_node/vars/main.yml",
            "_ray_node_state_files",
            {
                "{{ _ray_node_token_file }}",
                "{{ _ray_node_tls_dir }}",
                "{{ _ray_node_restart_marker }}",
            },
        ),
        (
            "roles/ray_node/tasks/unit.yml",
            "roles/ray_node/vars/main.yml",
            "_ray_node_state_files",
            set(),
        ),
        (
            "roles/firewall/tasks/nftables.yml",
            "roles/firewall/vars/main.yml",
            "_firewall_state",
            set(),
        ),
        (
            "roles/prometheus/tasks/configure.yml",
            "roles/prometheus/vars/main.yml",
            "_prometheus_state",
            set(),
        ),
    ],
)
def test_every_path_the_tasks_write_is_probed_with_its_mode(
    tasks: str, vars_file: str, key: str, not_probed: set[str]
) -> None:
    written = managed_paths(REPO / tasks)
    read = probed(REPO / vars_file, key)
    assert written, tasks
    for path, mode in written.items():
        if path in not_probed:
            continue
        assert path in read, f"{tasks} writes {path}, which {key} does not probe"
        assert read[path] == mode or (mode is None and read[path] is None), path


def test_the_token_tls_files_and_marker_are_probed() -> None:
    text = (REPO / "roles/ray_node/vars/main.yml").read_text()
    for needle in (
        "'path': _ray_node_token_file",
        "'path': _ray_node_tls_dir ~ '/node.key'",
        "'mode': '0600'",
        '{path: "{{ _ray_node_restart_marker }}", state: absent}',
    ):
        assert needle in text, needle
