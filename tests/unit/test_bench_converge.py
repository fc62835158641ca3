"""scripts/bench_converge.py: the `ray up` side gets the same head start as raykit (the same
cached CPython build at the same path, the same wheelhouse and uv, offline, hashes required),
the local provider on the same hosts, and the autoscaler setting asked for; the table's
ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import REPO, load_by_path

bc = load_by_path(REPO / "scripts" / "bench_converge.py", "bench_converge")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    version = bc.pins()["python"]
    for rel in (
        f"python/cpython-{version}-x86_64-glibc2.36.tar.gz",
        "wheelhouse/cp313-x86_64-glibc2.36-0123456789ab.tar",
        "uv/0.13.9-x86_64/uv",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    monkeypatch.setattr(bc, "CACHE", tmp_path)
    return tmp_path


def test_ray_up_installs_from_the_same_artifacts(cache: Path) -> None:
    ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    config = bc.rayup_config(ips, Path("/k/id"), {"RAY_enable_autoscaler_v2": "0"})
    assert config["provider"] == {"type": "local", "head_ip": ips[0], "worker_ips": ips[1:]}
    assert config["auth"] == {"ssh_user": "admin", "ssh_private_key": "/k/id"}
    mounts = config["file_mounts"]
    assert mounts["~/rayup/python.tar.gz"].startswith(str(cache / "python/cpython-"))
    assert mounts["~/rayup/wheelhouse.tar"] == str(
        cache / "wheelhouse/cp313-x86_64-glibc2.36-0123456789ab.tar"
    )
    assert mounts["~/rayup/uv"] == str(cache / "uv/0.13.9-x86_64/uv")
    (setup,) = config["setup_commands"]
    version = bc.pins()["python"]
    assert f"/opt/raykit/python/{version}/bin/python3" in setup
    for flag in ("--offline", "--no-index", "--require-hashes"):
        assert flag in setup
    assert "~/wh/cp313-x86_64-glibc2.36-0123456789ab/requirements.lock" in setup
    head = config["head_start_ray_commands"][-1]
    assert head.startswith("export RAY_enable_autoscaler_v2=0; ")
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert f"--object-store-memory={bc.OBJECT_STORE}" in config["worker_start_ray_commands"][-1]


def test_the_default_autoscaler_is_left_alone(cache: Path) -> None:
    config = bc.rayup_config(["10.0.0.1"], Path("/k"), {})
    assert config["provider"]["worker_ips"] == []
    assert "export" not in config["head_start_ray_commands"][-1]


def test_a_missing_artifact_says_how_to_fill_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bc, "CACHE", tmp_path)
    with pytest.raises(SystemExit, match="make demo"):
        bc.cached("wheelhouse/*.tar")


def test_ratios_and_never() -> None:
    assert bc.ratio(20.0, 40.0).strip() == "0.50x"
    assert bc.ratio(20.0, None).strip() == "-"
    assert bc.fmt(None).strip() == "never"
    assert bc.fmt(1.25).strip() == "1.2 s"
