"""`raykit sandbox` logic that needs no podman: distros, subnets, inventory, CLI parsing."""

from __future__ import annotations

import argparse
import ipaddress
import os
import resource
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from raykit import sandbox
from raykit.sandbox import HostSpec, SandboxError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raykit")
    sandbox.register(p.add_subparsers(dest="command", required=True))
    return p


def parse(*argv: str) -> argparse.Namespace:
    return parser().parse_args(["sandbox", *argv])


# ---------------------------------------------------------------------------- distros, CPUs


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (1, ["bookworm"]),
        (2, ["bookworm", "trixie"]),
        (3, ["bookworm", "bookworm", "trixie"]),
        (5, ["bookworm"] * 4 + ["trixie"]),
    ],
)
def test_default_distros(hosts: int, expected: list[str]) -> None:
    assert sandbox.default_distros(hosts) == expected


def test_resolve_distros_one_value_for_all_or_one_per_host() -> None:
    assert sandbox.resolve_distros(None, 3) is None
    assert sandbox.resolve_distros(["trixie"], 3) == ["trixie"] * 3
    assert sandbox.resolve_distros(["trixie", "bookworm"], 2) == ["trixie", "bookworm"]


def test_resolve_distros_errors() -> None:
    with pytest.raises(SandboxError, match="3 values for 2 hosts"):
        sandbox.resolve_distros(["bookworm", "bookworm", "trixie"], 2)
    with pytest.raises(SandboxError, match="unknown distro 'jessie'"):
        sandbox.resolve_distros(["bookworm", "jessie"], 2)


def test_resolve_cpus() -> None:
    assert sandbox.resolve_cpus(None, 2) is None
    assert sandbox.resolve_cpus([0.5], 3) == [0.5, 0.5, 0.5]
    assert sandbox.resolve_cpus([1, 0, 0.5], 3) == [1, None, 0.5]  # 0 = no limit
    with pytest.raises(SandboxError, match="2 values for 3 hosts"):
        sandbox.resolve_cpus([1, 1], 3)
    with pytest.raises(SandboxError, match=">= 0"):
        sandbox.resolve_cpus([-1], 1)
    with pytest.raises(SandboxError, match="more than this machine"):
        sandbox.resolve_cpus([float((os.cpu_count() or 1) + 1)], 1)


# ---------------------------------------------------------------------------- names, subnets


@pytest.mark.parametrize("name", ["raykit-sandbox", "a", "raykit-test-sbx", "lab2", "x" * 48])
def test_valid_names(name: str) -> None:
    assert sandbox.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "Upper", "with_underscore", "dot.ted", "x" * 49])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SandboxError, match="invalid sandbox name"):
        sandbox.validate_name(name)


def test_default_subnet_and_ips() -> None:
    subnet = sandbox.subnet_for()
    assert subnet == ipaddress.IPv4Network("10.89.10.0/24")
    assert [sandbox.host_ip(subnet, i) for i in (1, 2, 3)] == [
        "10.89.10.11",
        "10.89.10.12",
        "10.89.10.13",
    ]


def test_other_names_get_their_own_deterministic_subnet() -> None:
    pool = ipaddress.IPv4Network("10.89.0.0/16")
    seen = set()
    for i in range(300):
        subnet = sandbox.subnet_for(f"sbx{i}")
        assert subnet == sandbox.subnet_for(f"sbx{i}")  # deterministic
        assert subnet.prefixlen == 24
        assert subnet.subnet_of(pool)
        assert 11 <= subnet.network_address.packed[2] <= 250  # never the default's .10
        seen.add(subnet)
    assert len(seen) > 100  # spread over the range
    # Pinned so the rule cannot change by accident (docs and tests name this subnet).
    assert str(sandbox.subnet_for("raykit-test-sbx")) == "10.89.135.0/24"


def test_paths_live_in_the_repo_state_dir() -> None:
    repo = Path(sandbox.__file__).resolve().parents[3]  # runner/raykit/sandbox/__init__.py
    assert (repo / "pyproject.toml").is_file()
    assert sandbox.inventory_path() == repo / ".raykit" / "raykit-sandbox" / "inventory.yml"
    assert sandbox.key_path("x1") == repo / ".raykit" / "x1" / "id_ed25519"


# ---------------------------------------------------------------------------- planning


def test_plan_hosts_defaults() -> None:
    plan = sandbox.plan_hosts("raykit-sandbox", 3)
    assert [(h.name, h.ip, h.distro, h.cpus) for h in plan] == [
        ("raykit-sandbox-node1", "10.89.10.11", "bookworm", None),
        ("raykit-sandbox-node2", "10.89.10.12", "bookworm", None),
        ("raykit-sandbox-node3", "10.89.10.13", "trixie", None),
    ]


def test_plan_hosts_keeps_existing_hosts_when_nothing_is_asked() -> None:
    # A 2-host sandbox (bookworm, trixie, node2 limited to 0.5 CPU) grown to 3 hosts: the
    # existing hosts keep their distro and CPUs, the new one gets the default for its place.
    existing = {
        1: {"raykit.sandbox.distro": "bookworm", "raykit.sandbox.cpus": ""},
        2: {"raykit.sandbox.distro": "trixie", "raykit.sandbox.cpus": "0.5"},
    }
    plan = sandbox.plan_hosts("raykit-sandbox", 3, existing=existing)
    assert [(h.distro, h.cpus) for h in plan] == [
        ("bookworm", None),
        ("trixie", 0.5),
        ("trixie", None),
    ]
    explicit = sandbox.plan_hosts(
        "raykit-sandbox", 3, ["bookworm"] * 3, [1.0, 1.0, 1.0], existing=existing
    )
    assert [(h.distro, h.cpus) for h in explicit] == [("bookworm", 1.0)] * 3


@pytest.mark.parametrize("hosts", [0, sandbox.MAX_HOSTS + 1])
def test_plan_hosts_rejects_bad_counts(hosts: int) -> None:
    with pytest.raises(SandboxError, match="--hosts must be between"):
        sandbox.plan_hosts("raykit-sandbox", hosts)


# ---------------------------------------------------------------------------- inventory


def hosts_for(name: str, n: int) -> list[HostSpec]:
    return sandbox.plan_hosts(name, n)


def test_inventory_groups_and_vars(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    text = sandbox.render_inventory("lab1", hosts_for("lab1", 3), key)
    assert text.startswith("# Generated by `raykit sandbox up`")
    assert "do not edit" in text.splitlines()[0]
    assert "Real inventories must not" in text
    inv = yaml.safe_load(text)["all"]
    groups = inv["children"]
    assert list(groups["ray_head"]["hosts"]) == ["lab1-node1"]
    assert list(groups["ray_worker"]["hosts"]) == ["lab1-node2", "lab1-node3"]
    assert list(groups["monitoring"]["hosts"]) == ["lab1-node1"]
    ip3 = sandbox.host_ip(sandbox.subnet_for("lab1"), 3)
    assert inv["hosts"]["lab1-node3"] == {
        "ansible_host": ip3,
        "raykit_node_ip": ip3,
        "ansible_user": "admin",
        "ansible_become": True,
    }
    assert inv["vars"] == {
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        "raykit_cluster_name": "lab1",
        # half of the containers' 1 GiB /dev/shm
        "ray_node_object_store_memory": 512 * 1024 * 1024,
        "prometheus_source": "distro",
    }


def test_inventory_single_host_has_empty_worker_group(tmp_path: Path) -> None:
    inv = yaml.safe_load(sandbox.render_inventory("solo", hosts_for("solo", 1), tmp_path / "k"))
    groups = inv["all"]["children"]
    assert list(groups["ray_head"]["hosts"]) == ["solo-node1"]
    assert not groups["ray_worker"]["hosts"]


def test_inventory_is_what_ansible_reads(tmp_path: Path) -> None:
    tool = Path(sys.executable).parent / "ansible-inventory"
    if not tool.exists():
        tool = Path(shutil.which("ansible-inventory") or "/nonexistent")
    if not tool.exists():
        pytest.skip("ansible-inventory is not installed")
    for n in (1, 3):
        path = tmp_path / f"inv{n}.yml"
        path.write_text(sandbox.render_inventory("lab", hosts_for("lab", n), tmp_path / "k"))
        env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}
        proc = subprocess.run(
            [str(tool), "-i", str(path), "--list"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        listing = yaml.safe_load(proc.stdout)  # JSON is YAML
        assert listing["ray_head"]["hosts"] == ["lab-node1"]
        assert listing.get("ray_worker", {}).get("hosts", []) == [
            f"lab-node{i}" for i in range(2, n + 1)
        ]
        hostvars = listing["_meta"]["hostvars"]["lab-node1"]
        assert hostvars["ansible_user"] == "admin"
        assert hostvars["raykit_cluster_name"] == "lab"


# ---------------------------------------------------------------------------- podman config


def test_containers_conf_dropin_fits_this_machine(tmp_path: Path) -> None:
    text = sandbox.containers_conf_dropin()
    conf = tomllib.loads(text)
    assert conf["engine"]["runtime"] == "runc"
    limits = dict(item.split("=") for item in conf["containers"]["default_ulimits"])
    nofile = int(limits["nofile"].split(":")[1])
    nproc = int(limits["nproc"].split(":")[1])
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard_nofile == resource.RLIM_INFINITY or nofile <= hard_nofile
    assert nproc <= 32768
    path = tmp_path / "50-raykit.conf"
    path.write_text(text)
    assert sandbox._dropin_ok(path)
    path.write_text(text.replace('"runc"', '"crun"'))
    assert not sandbox._dropin_ok(path)
    path.write_text(text.replace(f"nofile={nofile}:{nofile}", "nofile=99999999:99999999"))
    assert not sandbox._dropin_ok(path)
    assert not sandbox._dropin_ok(tmp_path / "missing.conf")


def test_recipe_hash_covers_the_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bookworm = sandbox.recipe_hash("bookworm")
    assert bookworm == sandbox.recipe_hash("bookworm")
    assert bookworm != sandbox.recipe_hash("trixie")
    copy = tmp_path / "sandbox"
    shutil.copytree(sandbox.DATA_DIR, copy)
    monkeypatch.setattr("raykit.sandbox.images.DATA_DIR", copy)
    assert sandbox.recipe_hash("bookworm") == bookworm
    sudoers = copy / "rootfs" / "etc" / "sudoers.d" / "raykit-admin"
    sudoers.write_text(sudoers.read_text() + "# changed\n")
    assert sandbox.recipe_hash("bookworm") != bookworm


def test_image_data_files_are_packaged() -> None:
    root = sandbox.DATA_DIR / "rootfs"
    dropin = root / "etc/systemd/system/ssh.service.d/10-raykit-sandbox.conf"
    text = dropin.read_text()
    assert "ExecStartPre=\n" in text  # clears the unit's own ExecStartPre first
    assert "-t ed25519" in text
    assert "ssh-keygen -A" not in text.replace("`ssh-keygen -A`", "")
    assert "NOPASSWD: ALL" in (root / "etc/sudoers.d/raykit-admin").read_text()


# ---------------------------------------------------------------------------- CLI


def test_cli_sets_func_on_every_subcommand() -> None:
    for argv in (["up"], ["down"], ["status"]):
        args = parse(*argv)
        assert callable(args.func)
        assert args.name == "raykit-sandbox"


def test_cli_up_defaults() -> None:
    assert sandbox.up_args(parse("up")) == {
        "name": "raykit-sandbox",
        "hosts": 3,
        "distros": None,
        "cpus": None,
        "fresh": False,
    }


def test_cli_up_lists() -> None:
    args = parse("up", "--hosts", "3", "--distro", "bookworm,bookworm,trixie", "--cpus", "2,2,0.5")
    assert sandbox.up_args(args) == {
        "name": "raykit-sandbox",
        "hosts": 3,
        "distros": ["bookworm", "bookworm", "trixie"],
        "cpus": [2.0, 2.0, 0.5],
        "fresh": False,
    }
    one = sandbox.up_args(parse("up", "--hosts", "4", "--distro", "trixie", "--name", "sbx2"))
    assert one["hosts"] == 4
    assert one["distros"] == ["trixie"]
    assert one["name"] == "sbx2"
    assert sandbox.up_args(parse("up", "--fresh"))["fresh"] is True


def test_cli_up_without_hosts_keeps_the_current_size() -> None:
    assert sandbox.up_args(parse("up"), current_hosts=4)["hosts"] == 4
    assert sandbox.up_args(parse("up", "--hosts", "2"), current_hosts=4)["hosts"] == 2
    assert (
        sandbox.up_args(parse("up", "--distro", "bookworm,trixie"), current_hosts=4)["hosts"] == 2
    )


def test_cli_up_infers_hosts_from_lists() -> None:
    assert sandbox.up_args(parse("up", "--distro", "bookworm,trixie"))["hosts"] == 2
    assert sandbox.up_args(parse("up", "--cpus", "1,1,1,1"))["hosts"] == 4
    assert sandbox.up_args(parse("up", "--cpus", "1"))["hosts"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hosts", "2", "--distro", "bookworm,bookworm,trixie"], "3 values for 2 hosts"),
        (["--hosts", "3", "--cpus", "1,1"], "2 values for 3 hosts"),
        (["--distro", "bookworm,trixie", "--cpus", "1,1,1"], "the same number"),
    ],
)
def test_cli_up_count_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("up", *argv)
    with pytest.raises(SystemExit) as exc:
        args.func(args)  # fails in argument checking, before touching podman
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--distro", "bookworm,jessie"], "unknown distro 'jessie'"),
        (["--distro", "bookworm,,trixie"], "empty item"),
        (["--cpus", "two"], "not a list of numbers"),
        (["--cpus", "-1"], ">= 0"),
        (["--hosts", "0"], "between 1 and"),
        (["--hosts", "three"], "not a whole number"),
        (["--name", "Bad_Name"], "invalid sandbox name"),
    ],
)
def test_cli_up_parse_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("up", *argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse()
    assert "up" in capsys.readouterr().err


# ---------------------------------------------------------------------------- ensure_podman


class Recorder:
    """Stands in for the sandbox's _run: records commands, answers `podman info` with netavark."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, args: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(args))
        return subprocess.CompletedProcess(args, 0, stdout="netavark\n", stderr="")


# The command each package provides, for a fake `apt-get install`.
PACKAGE_COMMANDS = {
    **{
        pkg: [c for c, p in sandbox.HOST_PACKAGES.items() if p == pkg]
        for pkg in sandbox.HOST_PACKAGES.values()
    },
    **{pkg: [cmd] for cmd, pkg in sandbox.FIREWALL_PACKAGES.values()},
}


@pytest.fixture
def fake_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[set[str], Recorder, Path]:
    """A machine with nothing installed: apt-get install adds the packages' commands;
    containers.conf files live under tmp_path; NETAVARK_FW unset."""
    installed: set[str] = set()
    recorder = Recorder()

    def fake_run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if args[:2] == ["apt-get", "install"]:
            for pkg in args[2:]:
                installed.update(PACKAGE_COMMANDS.get(pkg, []))
        return recorder(args, **kw)

    dropin = tmp_path / "containers.conf.d" / "50-raykit.conf"
    monkeypatch.setattr("raykit.sandbox.host.CONTAINERS_CONF_DROPIN", dropin)
    monkeypatch.setattr(
        "raykit.sandbox.host.CONTAINERS_CONF_FILES",
        (tmp_path / "share.conf", tmp_path / "etc.conf"),
    )
    monkeypatch.delenv("NETAVARK_FW", raising=False)
    monkeypatch.setattr("raykit.sandbox.host._have", lambda cmd: cmd in installed)
    monkeypatch.setattr("raykit.sandbox.host._is_root", lambda: True)
    # Where ensure_podman's commands run: apt-get in host, `podman info` in _exec (_podman).
    monkeypatch.setattr("raykit.sandbox.host._run", fake_run)
    monkeypatch.setattr("raykit.sandbox._exec._run", fake_run)
    return installed, recorder, dropin


def test_ensure_podman_installs_configures_then_does_nothing(
    fake_machine: tuple[set[str], Recorder, Path],
) -> None:
    _, recorder, dropin = fake_machine

    assert sandbox.ensure_podman() is True
    apt = [c for c in recorder.commands if c[0] == "apt-get"]
    assert apt[0][:2] == ["apt-get", "update"]
    assert apt[1][:3] == ["apt-get", "install", "-y"]
    # netavark's default firewall driver (iptables) comes with podman: without it no
    # container starts on a bridge network.
    assert {"podman", "runc", "debootstrap", "netavark", "openssh-client", "iptables"} <= set(
        apt[1]
    )
    assert "nftables" not in apt[1]
    assert dropin.read_text() == sandbox.containers_conf_dropin()

    recorder.commands.clear()
    assert sandbox.ensure_podman() is False
    assert recorder.commands == []


def test_ensure_podman_installs_what_the_configured_firewall_driver_runs(
    fake_machine: tuple[set[str], Recorder, Path], tmp_path: Path
) -> None:
    installed, recorder, _ = fake_machine
    (tmp_path / "etc.conf").write_text('[network]\nfirewall_driver = "nftables"\n')
    assert sandbox.netavark_firewall_driver() == "nftables"
    sandbox.ensure_podman()
    install = next(c for c in recorder.commands if c[:2] == ["apt-get", "install"])
    assert "nftables" in install and "iptables" not in install
    assert "nft" in installed


def test_netavark_firewall_driver_reading_order(
    fake_machine: tuple[set[str], Recorder, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, dropin = fake_machine
    assert sandbox.netavark_firewall_driver() == "iptables"  # nothing configured
    (tmp_path / "share.conf").write_text('[network]\nfirewall_driver = "nftables"\n')
    (tmp_path / "etc.conf").write_text("[network]\n")  # silent: the earlier file's value stays
    assert sandbox.netavark_firewall_driver() == "nftables"
    dropin.parent.mkdir(parents=True)
    (dropin.parent / "90-site.conf").write_text('[network]\nfirewall_driver = "firewalld"\n')
    assert sandbox.netavark_firewall_driver() == "firewalld"  # drop-ins come last
    (tmp_path / "etc.conf").write_text("not toml [")  # unreadable files are skipped
    assert sandbox.netavark_firewall_driver() == "firewalld"
    monkeypatch.setenv("NETAVARK_FW", "none")
    assert sandbox.netavark_firewall_driver() == "none"


def test_ensure_podman_without_root_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("raykit.sandbox.host._have", lambda cmd: cmd != "podman")
    monkeypatch.setattr("raykit.sandbox.host._is_root", lambda: False)
    with pytest.raises(SandboxError, match="apt-get install -y podman"):
        sandbox.ensure_podman()


def test_up_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("raykit.sandbox.lifecycle.ensure_podman", lambda: False)
    monkeypatch.setattr("raykit.sandbox._exec._is_root", lambda: False)  # _require_root's
    with pytest.raises(SandboxError, match="needs root"):
        sandbox.up(name="raykit-unit-never", hosts=1)


def test_up_checks_arguments_before_touching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> bool:
        raise AssertionError("ensure_podman must not run")

    monkeypatch.setattr("raykit.sandbox.lifecycle.ensure_podman", boom)
    with pytest.raises(SandboxError, match="unknown distro"):
        sandbox.up(name="raykit-unit-never", hosts=2, distros=["sid"])
    with pytest.raises(SandboxError, match="--hosts must be between"):
        sandbox.up(name="raykit-unit-never", hosts=0)
    with pytest.raises(SandboxError, match="invalid sandbox name"):
        sandbox.up(name="No")


def test_subset_inventory_keeps_the_first_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("raykit.sandbox.state.state_dir", lambda name="x": tmp_path / name)
    hosts = sandbox.plan_hosts("lab", 3, ["bookworm", "bookworm", "trixie"], [None, None, 0.5])
    (tmp_path / "lab").mkdir()
    sandbox._write_state("lab", hosts, {}, ready=set())
    path = sandbox.subset_inventory("lab", 1)
    assert path == tmp_path / "lab" / "inventory-1.yml"
    inv = yaml.safe_load(path.read_text())["all"]
    assert list(inv["hosts"]) == ["lab-node1"]
    assert list(inv["children"]["ray_head"]["hosts"]) == ["lab-node1"]
    assert not inv["children"]["ray_worker"]["hosts"]
    assert inv["vars"]["raykit_cluster_name"] == "lab"  # the same cluster, fewer nodes
    two = yaml.safe_load(sandbox.subset_inventory("lab", 2).read_text())["all"]
    assert list(two["children"]["ray_worker"]["hosts"]) == ["lab-node2"]
    with pytest.raises(SandboxError, match="has 3 host"):
        sandbox.subset_inventory("lab", 4)
    with pytest.raises(SandboxError, match="does not exist"):
        sandbox.subset_inventory("other", 1)


LAB_JSON = {
    "_meta": {"hostvars": {}},
    "all": {"children": ["ungrouped", "ray_head", "ray_worker", "monitoring"]},
    "ray_head": {"hosts": ["ray-head"]},
    "ray_worker": {"hosts": ["ray-w1", "wsl-w2"]},
}


def test_play_inventory_maps_the_labs_hosts_onto_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("raykit.sandbox.state.state_dir", lambda name="x": tmp_path / name)
    hosts = sandbox.plan_hosts("sbx", 3)
    sandbox._write_state(
        "sbx", hosts, {h.name: f"id{h.index}" for h in hosts}, ready={"id1", "id2", "id3"}
    )
    path = sandbox.play_inventory("sbx", Path("inventories/lab"), LAB_JSON)
    assert path == tmp_path / "sbx" / "play-lab.yml"
    assert "ansible-playbook site.yml -i inventories/lab -i THIS_FILE" in path.read_text()
    played = yaml.safe_load(path.read_text())["all"]["hosts"]
    assert list(played) == ["ray-head", "ray-w1", "wsl-w2"]  # head first, in order
    for lab_host, host in zip(played, hosts, strict=True):
        hv = played[lab_host]
        assert hv["ansible_host"] == hv["raykit_node_ip"] == host.ip
        assert hv["ansible_port"] == 22  # the WSL host's 2222 does not apply
        assert hv["ansible_user"] == "admin" and hv["ansible_become"] is True
        assert hv["raykit_cluster_name"] == "sbx"  # never the real lab's secrets
        assert hv["ansible_ssh_private_key_file"] == str(tmp_path / "sbx" / "id_ed25519")


def test_play_inventory_refuses_a_sandbox_too_small_or_not_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("raykit.sandbox.state.state_dir", lambda name="x": tmp_path / name)
    with pytest.raises(SandboxError, match="is not up"):
        sandbox.play_inventory("sbx", Path("lab"), LAB_JSON)
    hosts = sandbox.plan_hosts("sbx", 2)
    sandbox._write_state("sbx", hosts, {h.name: f"id{h.index}" for h in hosts}, ready=set())
    with pytest.raises(SandboxError, match="is not up"):  # an unfinished up
        sandbox.play_inventory("sbx", Path("lab"), LAB_JSON)
    sandbox._write_state(
        "sbx", hosts, {h.name: f"id{h.index}" for h in hosts}, ready={"id1", "id2"}
    )
    with pytest.raises(SandboxError, match=r"has 3 hosts and sandbox 'sbx' 2.*--hosts 3"):
        sandbox.play_inventory("sbx", Path("lab"), LAB_JSON)


def test_cpu_limited_hosts_announce_their_share(tmp_path: Path) -> None:
    """Ray counts whole cores of a limit (0.5 -> 0: no actor would land there); a limited host
    announces CPUS_PER_CORE per core instead, so unequal hosts keep their proportions."""
    assert sandbox.CPUS_PER_CORE == 4
    assert [sandbox.announced_cpus(c) for c in (1.5, 0.5, 1.0, 0.25, 1.75, 0.1, 0.3)] == [
        6,
        2,
        4,
        1,
        7,
        1,
        1,
    ]
    plan = sandbox.plan_hosts("uneq", 3, cpus=[1.5, 0.5, None])
    text = sandbox.render_inventory("uneq", plan, tmp_path / "k")
    assert "announces 4 Ray CPUs per core" in text
    hosts = yaml.safe_load(text)["all"]["hosts"]
    assert [hosts[h.name].get("ray_node_num_cpus") for h in plan] == [6, 2, None]
