"""roles/ray_node/templates: the unit's and the drivers' environment for TLS and GCS fault
tolerance (rendered with Jinja, as Ansible renders them)."""

from __future__ import annotations

from typing import Any

import jinja2

from support import REPO

COMMON: dict[str, Any] = {
    "ansible_managed": "Ansible managed",
    "_ray_node_token_file": "/etc/raykit/auth_token",
    "_ray_node_home": "/var/lib/raykit",
    "_ray_node_tls_dir": "/etc/raykit/tls",
    "_ray_node_gcs_dir": "/var/lib/raykit/gcs",
    "_ray_node_head_address": "10.0.0.1",
    "_ray_node_dashboard_host": "10.0.0.1",
    "raykit_etc_dir": "/etc/raykit",
    "raykit_ports": {"gcs": 6379, "dashboard": 8265},
    "raykit_node_address": "10.0.0.2",
    "ray_node_user": "raykit",
    "ray_node_auth_mode": "token",
    "raykit_monitoring_enabled": False,
    "ray_node_gcs_reconnect_timeout": 120,
    "ray_node_liveness_check_interval": 5,
}


def render(name: str, **values: Any) -> list[str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "roles" / "ray_node" / "templates"),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["comment"] = lambda text: "# " + text
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("true", "1")
    return env.get_template(name).render(**{**COMMON, **values}).splitlines()


TLS = [
    "RAY_USE_TLS=1",
    "RAY_TLS_SERVER_CERT=/etc/raykit/tls/node.crt",
    "RAY_TLS_SERVER_KEY=/etc/raykit/tls/node.key",
    "RAY_TLS_CA_CERT=/etc/raykit/tls/ca.crt",
]


def test_tls_reaches_the_unit_and_the_drivers_alike() -> None:
    for name in ("ray.env.j2", "client.env.j2"):
        on = render(name, raykit_tls=True, ray_node_gcs_ft="none", _ray_node_is_head=False)
        off = render(name, raykit_tls=False, ray_node_gcs_ft="none", _ray_node_is_head=False)
        assert all(line in on for line in TLS), name
        assert not [line for line in off if line.startswith("RAY_USE_TLS")], name


def test_gcs_fault_tolerance_stores_on_the_head_and_every_node_waits() -> None:
    head = render("ray.env.j2", raykit_tls=False, ray_node_gcs_ft="rocksdb", _ray_node_is_head=True)
    worker = render(
        "ray.env.j2", raykit_tls=False, ray_node_gcs_ft="rocksdb", _ray_node_is_head=False
    )
    off = render("ray.env.j2", raykit_tls=False, ray_node_gcs_ft="none", _ray_node_is_head=True)
    assert "RAY_gcs_storage=rocksdb" in head
    assert "RAY_gcs_storage_path=/var/lib/raykit/gcs" in head
    assert not [line for line in worker if line.startswith("RAY_gcs_storage")]
    for lines in (head, worker):
        assert "RAY_gcs_rpc_server_reconnect_timeout_s=120" in lines
    assert not [line for line in off if line.startswith("RAY_gcs")]


def test_every_node_checks_its_liveness_often_so_workers_follow_a_restarted_head() -> None:
    # Ray's default (60 s) kept the workers out of a restarted head's new cluster for up to a
    # minute; the unit's environment carries the role's interval, in milliseconds.
    for ft in ("none", "rocksdb"):
        for head in (True, False):
            lines = render(
                "ray.env.j2", raykit_tls=False, ray_node_gcs_ft=ft, _ray_node_is_head=head
            )
            assert "RAY_raylet_liveness_self_check_interval_ms=5000" in lines, (ft, head)
    lines = render(
        "ray.env.j2", raykit_tls=False, ray_node_gcs_ft="none", _ray_node_is_head=False,
        ray_node_liveness_check_interval=12,
    )  # fmt: skip
    assert "RAY_raylet_liveness_self_check_interval_ms=12000" in lines
