"""The command line (runner/raykit/cli.py) and the playbook runner, with Ansible faked out."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import raykit
from raykit import cli, compare, model, playbooks
from raykit.model import Report
from raykit.playbooks import Outcome, ProgressView
from support import REPO

COMMANDS = ["up", "down", "status", "smoke"]


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What raykit prints on its (rich) error console."""
    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, width=200))
    return buf


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text("all:\n  hosts:\n    node1: {}\n")
    return path


@dataclass
class FakeRun:
    outcome: Outcome = field(
        default_factory=lambda: Outcome(rc=0, status="successful", seconds=1.0)
    )
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, playbook: str, inventory: str, **kwargs: Any) -> Outcome:
        self.calls.append({"playbook": playbook, "inventory": inventory, **kwargs})
        return self.outcome


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    fake = FakeRun()
    monkeypatch.setattr(playbooks, "run_playbook", fake)
    return fake


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_require_an_inventory(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args([command])
    assert exc.value.code == 2
    assert "-i/--inventory" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_parse_with_an_inventory(command: str) -> None:
    args = cli.build_parser().parse_args([command, "-i", "inv.yml"])
    assert args.command == command
    assert args.inventory == "inv.yml"
    assert args.verbose is False
    assert args.extra_vars == []
    assert args.func is getattr(cli, f"cmd_{command}")
    long = cli.build_parser().parse_args([command, "--inventory", "x", "--verbose"])
    assert (long.inventory, long.verbose) == ("x", True)


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args([])
    assert exc.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_down_purge() -> None:
    p = cli.build_parser()
    assert p.parse_args(["down", "-i", "x"]).purge is False
    assert p.parse_args(["down", "-i", "x", "--purge"]).purge is True
    with pytest.raises(SystemExit):
        p.parse_args(["up", "-i", "x", "--purge"])  # only `down` purges


def test_remove_node_takes_hosts() -> None:
    p = cli.build_parser()
    args = p.parse_args(["remove-node", "-i", "x", "w1", "w2"])
    assert (args.hosts, args.purge, args.drain_timeout) == (["w1", "w2"], False, None)
    assert args.func is cli.cmd_remove_node
    with pytest.raises(SystemExit):
        p.parse_args(["remove-node", "-i", "x"])  # at least one host


def test_remove_node_drains_stops_then_converges_the_rest(
    inventory: Path, fake_run: FakeRun, out: io.StringIO
) -> None:
    argv = [
        "remove-node",
        "-i",
        str(inventory),
        "w2",
        "w3",
        "w2",
        "--purge",
        "--drain-timeout",
        "5",
    ]
    assert cli.main(argv) == 0
    first, second = fake_run.calls
    assert first["playbook"] == "playbooks/remove-node.yml"
    assert first["extravars"] == {
        "raykit_remove_nodes": ["w2", "w3"],
        "raykit_purge": True,
        "ray_node_drain_timeout": 5,
    }
    assert first["limit"] is None
    assert second["playbook"] == "site.yml"
    assert second["extravars"] == {"raykit_remove_nodes": ["w2", "w3"]}
    assert second["limit"] == "all:!w2:!w3"
    assert f"Take them out of {inventory} now" in out.getvalue()


def test_remove_node_converges_nothing_when_the_removal_failed(
    inventory: Path, fake_run: FakeRun, out: io.StringIO
) -> None:
    fake_run.outcome = Outcome(rc=2, status="failed", seconds=1.0)
    assert cli.main(["remove-node", "-i", str(inventory), "head"]) == 1
    assert [c["playbook"] for c in fake_run.calls] == ["playbooks/remove-node.yml"]
    assert "Take them out" not in out.getvalue()


@pytest.mark.parametrize("command", ["upgrade", "rollback"])
def test_upgrade_and_rollback_run_their_playbook_allowed_to_switch(
    command: str, inventory: Path, fake_run: FakeRun
) -> None:
    assert cli.main([command, "-i", str(inventory), "-e", "ray_node_start_timeout=60"]) == 0
    (call,) = fake_run.calls
    assert call["playbook"] == f"playbooks/{command}.yml"
    assert call["extravars"] == {"raykit_switching": True, "ray_node_start_timeout": "60"}
    assert call["limit"] is None


def test_a_failed_upgrade_exits_non_zero(inventory: Path, fake_run: FakeRun) -> None:
    fake_run.outcome = Outcome(rc=2, status="failed", seconds=1.0)
    assert cli.main(["upgrade", "-i", str(inventory)]) == 1


def test_smoke_tasks() -> None:
    p = cli.build_parser()
    assert p.parse_args(["smoke", "-i", "x"]).tasks == 5
    assert p.parse_args(["smoke", "-i", "x", "--tasks", "12"]).tasks == 12
    with pytest.raises(SystemExit):
        p.parse_args(["smoke", "-i", "x", "--tasks", "many"])


def test_extra_vars_are_repeatable() -> None:
    args = cli.build_parser().parse_args(["up", "-i", "x", "-e", "a=1", "--extra-vars", "b=2"])
    assert args.extra_vars == ["a=1", "b=2"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"raykit {raykit.__version__}"
    assert raykit.__version__ == "0.1.0"


def test_extravars_parsing() -> None:
    assert cli._extravars([]) == {}
    assert cli._extravars(["a=1", "b=x=y", "c=", "a=2"]) == {"a": "2", "b": "x=y", "c": ""}
    assert cli._extravars(["raykit_python_version=3.13.5"]) == {"raykit_python_version": "3.13.5"}


@pytest.mark.parametrize("pair", ["novalue", "=value", ""])
def test_extravars_bad_pair(pair: str) -> None:
    with pytest.raises(SystemExit) as exc:
        cli._extravars(["ok=1", pair])
    assert exc.value.code == f"raykit: -e takes KEY=VALUE, got {pair!r}"


def test_main_with_a_bad_pair_runs_nothing(
    inventory: Path, fake_run: FakeRun, out: io.StringIO
) -> None:
    with pytest.raises(SystemExit, match="got 'oops'"):
        cli.main(["up", "-i", str(inventory), "-e", "oops"])
    assert fake_run.calls == []


# ---------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("argv", "playbook", "extravars"),
    [
        (["up"], "site.yml", {}),
        (["up", "-e", "raykit_ray_version=2.60.0"], "site.yml", {"raykit_ray_version": "2.60.0"}),
        (["down"], "playbooks/teardown.yml", {"raykit_purge": False}),
        (["down", "--purge"], "playbooks/teardown.yml", {"raykit_purge": True}),
        (["status", "--deep"], "playbooks/status.yml", {}),
        (["smoke"], "playbooks/smoke.yml", {"smoke_tasks": 5}),
        (
            ["smoke", "--tasks", "3", "-e", "a=b"],
            "playbooks/smoke.yml",
            {"smoke_tasks": 3, "a": "b"},
        ),
    ],
)
def test_commands_run_their_playbook(
    argv: list[str],
    playbook: str,
    extravars: dict[str, object],
    inventory: Path,
    fake_run: FakeRun,
    out: io.StringIO,
) -> None:
    assert cli.main([*argv, "-i", str(inventory)]) == 0
    assert len(fake_run.calls) == 1
    call = fake_run.calls[0]
    assert call["playbook"] == playbook
    assert (playbooks.REPO / playbook).is_file()
    assert call["inventory"] == str(inventory)
    assert call["extravars"] == extravars
    assert call["verbose"] is False
    assert call["console"] is cli.err
    assert "done in 1.0 s" in out.getvalue()


def test_verbose_is_passed_on(inventory: Path, fake_run: FakeRun, out: io.StringIO) -> None:
    assert cli.main(["status", "--deep", "-v", "-i", str(inventory)]) == 0
    assert fake_run.calls[0]["verbose"] is True


def test_a_failed_run_exits_1_and_names_the_host_and_task(
    inventory: Path, fake_run: FakeRun, out: io.StringIO
) -> None:
    fake_run.outcome = Outcome(
        rc=2,
        status="failed",
        seconds=12.34,
        stats={
            "node1": {"ok": 7, "changed": 2},
            "node2": {"ok": 3, "failures": 1, "skipped": 4},
            "localhost": {"ok": 9},
        },
        failures=[
            {
                "host": "node2",
                "task": "version_gate : Compare every host",
                "msg": "Version gate: the hosts would not run the same python.",
            }
        ],
        artifact_dir="/tmp/raykit-artifacts/abc",
    )
    assert cli.main(["up", "-i", str(inventory)]) == 1
    text = out.getvalue()
    assert "FAILED in 12.3 s" in text
    assert "node2 failed at version_gate : Compare every host:" in text
    assert "Version gate: the hosts would not run the same python." in text
    assert "full log: /tmp/raykit-artifacts/abc/stdout" in text
    rows = {line.split()[1]: line for line in text.splitlines() if "node" in line and "│" in line}
    assert [c.strip() for c in rows["node1"].split("│")[2:7]] == ["7", "2", "0", "0", "0"]
    assert [c.strip() for c in rows["node2"].split("│")[2:7]] == ["3", "0", "1", "0", "4"]
    assert "localhost" not in text  # the control node is not a cluster host


def test_a_successful_run_prints_no_failure(
    inventory: Path, fake_run: FakeRun, out: io.StringIO
) -> None:
    fake_run.outcome = Outcome(rc=0, status="successful", seconds=3.0, stats={"node1": {"ok": 1}})
    assert cli.main(["status", "--deep", "-i", str(inventory)]) == 0
    text = out.getvalue()
    assert "done in 3.0 s" in text
    assert "failed at" not in text
    assert "full log" not in text


def test_interrupt_exits_130(
    inventory: Path, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Outcome:
        raise KeyboardInterrupt

    monkeypatch.setattr(playbooks, "run_playbook", interrupted)
    assert cli.main(["up", "-i", str(inventory)]) == 130
    assert "raykit: interrupted" in out.getvalue()


# ---------------------------------------------------------------------------- run_playbook


def test_run_playbook_without_an_inventory_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(**kwargs: Any) -> None:
        raise AssertionError("ansible_runner.run was called")

    monkeypatch.setattr(playbooks.ansible_runner, "run", must_not_run)
    monkeypatch.setattr(playbooks, "REPO", tmp_path)
    buf = io.StringIO()
    missing = tmp_path / "no-such-inventory.yml"
    outcome = playbooks.run_playbook("site.yml", missing, console=Console(file=buf, width=200))
    assert outcome.rc == 2
    assert not outcome.ok
    assert outcome.status == "failed"
    assert outcome.failures == [
        {"host": "-", "task": "inventory", "msg": f"{missing} does not exist"}
    ]
    assert f"inventory {missing} does not exist" in buf.getvalue()
    assert not (tmp_path / ".raykit").exists()  # no run directory either


@dataclass
class FakeConfig:
    artifact_dir: str


@dataclass
class FakeResult:
    rc: int
    status: str
    stats: dict[str, dict[str, int]] | None
    config: FakeConfig


def test_run_playbook_drives_ansible_runner(
    tmp_path: Path, inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(**kwargs: Any) -> FakeResult:
        seen.update(kwargs)
        handler = kwargs["event_handler"]
        handler(
            {
                "event": "runner_on_failed",
                "event_data": {"host": "node2", "task": "Probe", "res": {"msg": "boom"}},
            }
        )
        handler(
            {
                "event": "runner_on_ok",
                "event_data": {
                    "host": "node1",
                    "task": "Show",
                    "task_action": "ansible.builtin.debug",
                    "res": {"msg": "hello"},
                },
            }
        )
        return FakeResult(
            rc=2,
            status="failed",
            stats={"ok": {"node1": 3, "node2": 1}, "failures": {"node2": 1}, "changed": {}},
            config=FakeConfig(artifact_dir=str(tmp_path / "artifacts")),
        )

    monkeypatch.setattr(playbooks.ansible_runner, "run", fake_run)
    monkeypatch.setattr(playbooks, "REPO", tmp_path)
    outcome = playbooks.run_playbook(
        "playbooks/status.yml",
        inventory,
        extravars={"a": 1},
        limit="node1",
        console=Console(file=io.StringIO(), width=200),
    )
    assert seen["playbook"] == "playbooks/status.yml"
    assert seen["inventory"] == str(inventory.resolve())
    assert seen["extravars"] == {"a": 1}
    assert seen["limit"] == "node1"
    assert seen["project_dir"] == str(tmp_path)
    assert seen["envvars"]["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")
    private = Path(seen["private_data_dir"])
    assert private.parent == tmp_path / ".raykit" / "runs"
    assert private.is_dir()
    assert private.name.endswith(f"-status-{os.getpid()}")
    assert outcome.rc == 2 and not outcome.ok
    assert outcome.status == "failed"
    assert outcome.stats == {"node1": {"ok": 3}, "node2": {"ok": 1, "failures": 1}}
    assert outcome.failures == [{"host": "node2", "task": "Probe", "msg": "boom"}]
    assert outcome.messages == ["hello"]
    assert outcome.artifact_dir == str(tmp_path / "artifacts")


def test_unreachable_hosts_are_counted(
    tmp_path: Path, inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ansible-runner calls Ansible's unreachable count "dark": the summary counts them."""

    def fake_run(**kwargs: Any) -> FakeResult:
        return FakeResult(
            rc=4,
            status="failed",
            stats={"ok": {"node2": 2}, "dark": {"node1": 1}, "failures": {}},
            config=FakeConfig(artifact_dir=str(tmp_path)),
        )

    monkeypatch.setattr(playbooks.ansible_runner, "run", fake_run)
    monkeypatch.setattr(playbooks, "REPO", tmp_path)
    outcome = playbooks.run_playbook("site.yml", inventory, console=Console(file=io.StringIO()))
    assert outcome.stats["node1"] == {"unreachable": 1}
    buf = io.StringIO()
    playbooks.print_summary(outcome, Console(file=buf, width=200))
    row = next(line for line in buf.getvalue().splitlines() if "node1" in line)
    assert row.split("│")[1:-1][4].strip() == "1"  # the unreachable column


def test_a_failure_before_any_task_shows_ansibles_own_words(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_text(
        "[WARNING]: Failed to parse inventory with 'yaml' plugin: YAML parsing failed\n"
        "Origin: inv/hosts.yml:6:6\n"
        "[ERROR]: No inventory was parsed, please check your configuration and options.\n"
    )
    outcome = playbooks.Outcome(rc=1, status="failed", seconds=0.1, artifact_dir=str(tmp_path))
    buf = io.StringIO()
    playbooks.print_summary(outcome, Console(file=buf, width=200))
    assert "Origin: inv/hosts.yml:6:6" in buf.getvalue()
    assert "No inventory was parsed" in buf.getvalue()


def test_ansible_words_keep_the_place_it_pointed_at_without_colours() -> None:
    text = (
        "\x1b[1;35mYAML parsing failed: did not find expected key.\x1b[0m\n"
        "\x1b[1;35mOrigin: /x/hosts.yml:6:6\x1b[0m\n\n"
        + "".join(f"noise {i}\n" for i in range(20))
        + "\x1b[0;31m[ERROR]: Completely failed to parse inventory source /x/hosts.yml\x1b[0m\n"
    )
    words = playbooks.ansible_words(text)
    assert words[:2] == [
        "YAML parsing failed: did not find expected key.",
        "Origin: /x/hosts.yml:6:6",
    ]
    assert words[-1] == "[ERROR]: Completely failed to parse inventory source /x/hosts.yml"
    assert not any("\x1b" in w for w in words)


def test_step_times_add_up_each_steps_plays() -> None:
    outcome = playbooks.Outcome(
        rc=0,
        status="successful",
        seconds=10.0,
        plays=[("Preflight | a", 1.0), ("Preflight | b", 2.0), ("Cluster | head", 4.0)],
        slowest=[{"play": "Cluster | head", "task": "Start", "host": "h", "seconds": 3.456}],
    )
    assert playbooks.step_times(outcome) == {"Preflight": 3.0, "Cluster": 4.0}
    data = playbooks.timings(outcome)
    assert data["steps"] == {"Preflight": 3.0, "Cluster": 4.0}
    assert data["slowest_tasks"][0]["seconds"] == 3.46
    buf = io.StringIO()
    playbooks.print_summary(outcome, Console(file=buf, width=200))
    assert "time per step: Preflight 3 s, Cluster 4 s" in buf.getvalue()


def test_progress_view_times_plays_and_tasks() -> None:
    v, _ = view()
    v({"event": "playbook_on_play_start", "event_data": {"play": "Preflight | hosts"}})
    v(
        {
            "event": "runner_on_ok",
            "event_data": {"host": "h1", "task": "Probe", "duration": 1.5, "res": {}},
        }
    )
    v({"event": "playbook_on_play_start", "event_data": {"play": "Cluster | head"}})
    v.close()
    assert [p for p, _ in v.plays] == ["Preflight | hosts", "Cluster | head"]
    assert v.task_times == [
        {"play": "Preflight | hosts", "task": "Probe", "host": "h1", "seconds": 1.5}
    ]


# ---------------------------------------------------------------------------- ProgressView


def view(verbose: bool = False) -> tuple[ProgressView, io.StringIO]:
    buf = io.StringIO()
    return ProgressView(Console(file=buf, width=200), verbose), buf


def test_progress_view_records_failures_and_messages() -> None:
    v, buf = view()
    events: list[dict[str, Any]] = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Version gate"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Probe"}},
        {
            "event": "runner_on_failed",
            "event_data": {"host": "node2", "task": "Probe", "res": {"msg": "  no python here\n"}},
        },
        {
            "event": "runner_on_failed",
            "event_data": {
                "host": "node3",
                "task": "Probe",
                "res": {"msg": "ignored"},
                "ignore_errors": True,
            },
        },
        {
            "event": "runner_on_unreachable",
            "event_data": {
                "host": "node4",
                "task": "Gathering Facts",
                "res": {"msg": "ssh: timed out"},
            },
        },
        {
            "event": "runner_on_failed",
            "event_data": {"host": "node5", "task": "Run", "res": {"stderr": "Traceback ..."}},
        },
        {"event": "runner_on_failed", "event_data": {"host": "node6", "task": "Run", "res": {}}},
        {
            "event": "runner_on_ok",
            "event_data": {"host": "node1", "task": "Write unit", "res": {"changed": True}},
        },
        {
            "event": "runner_on_ok",
            "event_data": {"host": "node1", "task": "Unchanged", "res": {"changed": False}},
        },
        {
            "event": "runner_on_ok",
            "event_data": {
                "host": "node1",
                "task": "Show",
                "task_action": "ansible.builtin.debug",
                "res": {"msg": "3 nodes alive"},
            },
        },
        {
            "event": "runner_on_ok",
            "event_data": {
                "host": "node1",
                "task": "Show list",
                "task_action": "debug",
                "res": {"msg": ["line one", 2]},
            },
        },
        {
            "event": "runner_on_ok",
            "event_data": {
                "host": "node1",
                "task": "Empty",
                "task_action": "debug",
                "res": {"msg": ""},
            },
        },
        {"event": "verbose", "stdout": "ignored when not verbose"},
        {"event": "runner_on_ok", "event_data": None},
    ]
    assert all(v(e) is True for e in events)
    assert v.failures == [
        {"host": "node2", "task": "Probe", "msg": "no python here"},
        {"host": "node4", "task": "Gathering Facts", "msg": "ssh: timed out"},
        {"host": "node5", "task": "Run", "msg": "Traceback ..."},
        {"host": "node6", "task": "Run", "msg": "failed"},
    ]
    assert v.messages == ["3 nodes alive", "line one\n2"]
    lines = buf.getvalue().splitlines()
    assert lines[0] == "Version gate"
    assert "  ✗ node2: Probe" in lines
    assert "  ✗ node4: Gathering Facts" in lines
    assert "  ~ node1: Write unit" in lines
    assert not any("Unchanged" in line or "node3" in line for line in lines)
    assert "3 nodes alive" in lines
    assert "ignored when not verbose" not in buf.getvalue()


def test_progress_view_shows_each_item_of_a_debug_loop_once() -> None:
    v, buf = view()
    debug = {"host": "head", "task": "Say", "task_action": "ansible.builtin.debug"}
    copy = {"host": "head", "task": "Files", "task_action": "ansible.builtin.copy"}
    for event in (
        {"event": "runner_item_on_ok", "event_data": {**debug, "res": {"msg": "w1: drained"}}},
        {"event": "runner_item_on_ok", "event_data": {**debug, "res": {"msg": "w2: drained"}}},
        {"event": "runner_on_ok", "event_data": {**debug, "res": {"msg": "All items completed",
                                                                 "results": [{}, {}]}}},
        {"event": "runner_item_on_ok", "event_data": {**copy, "res": {"changed": True}}},
        {"event": "runner_item_on_ok", "event_data": {**copy, "res": {"changed": True}}},
        {"event": "runner_on_ok", "event_data": {**copy, "res": {"changed": True, "results": []}}},
    ):  # fmt: skip
        v(event)
    assert v.messages == ["w1: drained", "w2: drained"]
    assert buf.getvalue().splitlines() == ["w1: drained", "w2: drained", "  ~ head: Files"]


def test_progress_view_verbose_streams_ansibles_output() -> None:
    v, buf = view(verbose=True)
    assert v({"event": "playbook_on_task_start", "stdout": "TASK [Probe] [red]***"}) is True
    assert "TASK [Probe] [red]***" in buf.getvalue()  # printed as is, no markup


def test_progress_view_tracks_each_host() -> None:
    v, _ = view()
    events: list[dict[str, Any]] = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Cluster | head"}},
        {"event": "runner_on_start", "event_data": {"host": "node1", "task": "Write unit"}},
        {"event": "runner_on_start", "event_data": {"host": "node2", "task": "Write unit"}},
        {"event": "runner_on_ok", "event_data": {"host": "node1", "res": {"changed": True}}},
        {"event": "runner_on_ok", "event_data": {"host": "node1", "res": {"changed": False}}},
        {"event": "runner_on_skipped", "event_data": {"host": "node1"}},
        {"event": "runner_on_start", "event_data": {"host": "node3", "task": "Probe"}},
        {"event": "runner_on_failed", "event_data": {"host": "node3", "task": "Probe"}},
        {"event": "runner_on_failed", "event_data": {"host": "node2", "ignore_errors": True}},
        {"event": "runner_on_ok", "event_data": {"host": "localhost", "res": {}}},
    ]
    for e in events:
        v(e)
    assert set(v.hosts) == {"node1", "node2", "node3"}  # localhost (the control node) is not
    n1, n2, n3 = (v.hosts[h] for h in ("node1", "node2", "node3"))
    assert (n1.ok, n1.changed, n1.skipped, n1.failed, n1.state) == (2, 1, 1, 0, "idle")
    assert (n2.ok, n2.failed) == (1, 0)  # an ignored failure counts as ok
    assert (n3.failed, n3.state, n3.task) == (1, "failed", "Probe")
    buf = io.StringIO()
    Console(file=buf, width=120).print(v.table())
    text = buf.getvalue()
    assert "Cluster | head" in text
    assert "failed at Probe" in text
    row = next(line for line in text.splitlines() if line.startswith("node1"))
    assert row.split()[1:3] == ["2", "1"]


# ---------------------------------------------------------------------------- bench, run, compare


def test_bench_list_names_every_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["fake_nn", "fake_nn_balanced", "forward_remote", "simple_tasks"]


def test_bench_needs_inventory_and_workload(out: io.StringIO) -> None:
    assert cli.main(["bench", "--workload", "fake_nn"]) == 2
    assert "-i INVENTORY and --workload NAME are required" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "fake_nm"], "unknown workload 'fake_nm'"),
        (["--workload", "fake_nn", "--set", "task_nun=5"], "task_num"),
        (["--workload", "fake_nn", "--set", "task_num=many"], "task_num"),
        (["--workload", "fake_nn", "--set", "preset=huge"], "preset"),
        (["--workload", "fake_nn", "--set", "novalue"], "novalue"),
        (["--workload", "simple_tasks", "--set", "tasks=-3"], "tasks must be >= 0, got -3"),
        (["--workload", "fake_nn", "--set", "actors=0"], "actors must be >= 1"),
    ],
)
def test_bench_bad_workload_input_exits_2_before_the_inventory_is_read(
    args: list[str], message: str, out: io.StringIO, tmp_path: Path
) -> None:
    # The inventory does not even exist: the workload's input is checked first.
    assert cli.main(["bench", "-i", str(tmp_path / "nope"), *args]) == 2
    assert message in out.getvalue()


@pytest.mark.parametrize("where", ["/dev/full/x", "file"])
def test_bench_unwritable_reports_dir_exits_2_before_the_inventory_is_read(
    where: str, out: io.StringIO, tmp_path: Path
) -> None:
    if where == "file":
        (tmp_path / "file").write_text("not a directory")
        where = str(tmp_path / "file" / "reports")
    code = cli.main(
        ["bench", "-i", str(tmp_path / "nope"), "--workload", "simple_tasks", "--reports", where]
    )
    assert code == 2
    text = out.getvalue()
    assert f"--reports {where}: cannot write reports there" in text
    assert "Traceback" not in text and "does not exist" not in text  # before the inventory


def test_bench_undeployed_inventory_exits_2(out: io.StringIO, tmp_path: Path) -> None:
    assert cli.main(["bench", "-i", str(tmp_path / "nope.yml"), "--workload", "fake_nn"]) == 2
    assert "does not exist" in out.getvalue()


def test_bench_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "-i", "inv", "--workload", "fake_nn", "--repeat", "0"])
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_a_failed_reports_cause_is_printed_as_text_not_markup(
    out: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Square brackets in a cause (Ray's "[repeated 3x across cluster]", a path "[/tmp/x]")
    are shown, never read as rich markup (which dropped them or raised MarkupError)."""
    error = "run 1: job j FAILED: ValueError: [/tmp/x] bad [repeated 3x across cluster]"
    doc = Report.from_dict({"status": "failed", "error": error, "notes": ["[/b] note"], "runs": []})
    cli._print_report(doc, {"json": tmp_path / "r" / "report.json"})
    text = out.getvalue()
    assert f"FAILED: {error}" in text
    assert "note: [/b] note" in text
    assert capsys.readouterr().out == f"{tmp_path / 'r'}\n"


def test_run_passes_the_scripts_own_arguments() -> None:
    args = cli.build_parser().parse_args(
        ["run", "-i", "inv", "--repeat", "2", "train.py", "--epochs", "3", "-i", "x"]
    )
    assert (args.script, args.args, args.repeat, args.inventory) == (
        "train.py",
        ["--epochs", "3", "-i", "x"],
        2,
        "inv",
    )
    assert args.tunnel == "auto" and args.reports == "reports"


def test_run_missing_script_exits_2(out: io.StringIO, tmp_path: Path) -> None:
    assert cli.main(["run", "-i", "inv", str(tmp_path / "nope.py")]) == 2
    assert "nope.py does not exist" in out.getvalue()


def test_run_script_outside_its_working_dir_exits_2(out: io.StringIO, tmp_path: Path) -> None:
    script = tmp_path / "a.py"
    script.write_text("print(1)\n")
    (tmp_path / "sub").mkdir()
    argv = ["run", "-i", "inv", "--working-dir", str(tmp_path / "sub"), str(script)]
    assert cli.main(argv) == 2
    assert "is not inside --working-dir" in out.getvalue()


def test_compare_errors_exit_2(out: io.StringIO, tmp_path: Path) -> None:
    assert cli.main(["compare", str(tmp_path / "missing")]) == 2
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert cli.main(["compare", str(tmp_path / "other.json")]) == 2
    assert "raykit compare" in out.getvalue()


SAVED_REPORTS = REPO / "tests" / "fixtures" / "saved-reports"


def test_compare_html_is_an_option_beside_markdown() -> None:
    args = cli.build_parser().parse_args(["compare", "a", "b", "--html", "c.html"])
    assert (args.reports, args.html, args.markdown, args.func) == (
        ["a", "b"],
        "c.html",
        None,
        cli.cmd_compare,
    )
    assert cli.build_parser().parse_args(["compare", "a"]).html is None


def test_compare_writes_the_html_page_with_the_table_and_markdown(
    out: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = sorted(SAVED_REPORTS.iterdir())
    page, md = tmp_path / "compare.html", tmp_path / "compare.md"
    argv = ["compare", str(a), str(b / "report.json"), "--html", str(page), "--markdown", str(md)]
    assert cli.main(argv) == 0
    html = page.read_text(encoding="utf-8")
    reports = [Report.load(a), Report.load(b)]
    assert html == compare.render_html(reports, [str(a), str(b / "report.json")])
    assert html.count("<img ") == len(model.SERIES_METRICS)  # the second report has no series
    assert md.read_text() == compare.render_markdown(reports)
    assert "wall time (median)" in capsys.readouterr().out  # the terminal table, as before
    assert f"markdown: {md}" in out.getvalue() and f"html: {page}" in out.getvalue()


def test_compare_output_in_a_missing_directory_is_refused_before_anything_is_printed(
    out: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = sorted(SAVED_REPORTS.iterdir())
    page = tmp_path / "nowhere" / "compare.html"
    assert cli.main(["compare", str(a), str(b), "--html", str(page)]) == 2
    said = " ".join(out.getvalue().split())
    assert f"--html {page}: the directory {page.parent} does not exist" in said
    assert capsys.readouterr().out == ""  # no table either
    assert not page.parent.exists()


def test_compare_output_that_cannot_be_written_is_an_error_not_a_traceback(
    out: io.StringIO, tmp_path: Path
) -> None:
    a, b = sorted(SAVED_REPORTS.iterdir())
    md = tmp_path / "compare.md"
    md.mkdir()  # a directory where the file should go: writing it fails
    assert cli.main(["compare", str(a), str(b), "--markdown", str(md)]) == 2
    assert f"cannot write {md}: Is a directory" in " ".join(out.getvalue().split())


def test_compare_writes_no_page_for_an_unreadable_report(out: io.StringIO, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"schema": 1, "runs": [{"wall_s": "fast"}]}')
    page = tmp_path / "compare.html"
    assert cli.main(["compare", str(tmp_path / "bad.json"), "--html", str(page)]) == 2
    assert "runs[0].wall_s: expected a number or null" in out.getvalue()
    assert not page.exists()
