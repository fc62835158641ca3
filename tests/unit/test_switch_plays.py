"""playbooks/switch.yml's order and its way back, read from the playbook itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def plays(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((REPO / "playbooks" / name).read_text(encoding="utf-8"))


def included(play: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, tasks_from) of every include_role in the play, blocks and rescues too."""
    out = []

    def walk(tasks: list[dict[str, Any]]) -> None:
        for t in tasks:
            walk(t.get("block", []))
            walk(t.get("rescue", []))
            inc = t.get("ansible.builtin.include_role")
            if inc:
                out.append((inc["name"], inc.get("tasks_from", "main.yml")))

    walk(play.get("tasks", []))
    return out


def test_workers_stop_before_the_head_and_the_head_starts_before_the_workers() -> None:
    steps = [
        (p["hosts"].removesuffix(":&raykit_switch_hosts"), step)
        for p in plays("switch.yml")
        if "hosts" in p and not p["name"].startswith("Switch back")
        for _, step in included(p)
        if step in ("stop.yml", "run.yml", "check.yml", "every_node.yml", "main.yml")
    ]
    assert steps == [
        ("ray_head:ray_worker", "main.yml"),  # the version gate, while the old cluster runs
        ("ray_worker", "stop.yml"),
        ("ray_head", "stop.yml"),
        ("ray_head", "run.yml"),
        ("ray_worker", "run.yml"),
        ("ray_head", "check.yml"),
        ("ray_head", "every_node.yml"),
    ]


def test_every_step_after_the_first_stop_is_caught_and_written_down() -> None:
    """A host that fails a step must stay in the run, so that it can be switched back: every
    play between the first stop and the outcome wraps its work in block/rescue, and the rescue
    records the failure instead of raising it."""
    body = plays("switch.yml")
    first_stop = next(i for i, p in enumerate(body) if "stop the workers" in p["name"])
    for play in body[first_stop:]:
        if "hosts" not in play or play["hosts"] == "localhost" or "pruned" in play["name"]:
            continue
        (task,) = play["tasks"]
        assert task.get("block") and task.get("rescue"), play["name"]
        assert "when" in task, play["name"]  # skipped once a failure is on record (or none is)
        (rescue,) = task["rescue"]
        assert rescue["ansible.builtin.include_role"]["tasks_from"] == "switch_failed.yml"


def test_the_way_back_runs_only_after_a_failure_and_the_last_play_fails_the_run() -> None:
    body = plays("switch.yml")
    back = [p for p in body if p.get("name", "").startswith("Switch back")]
    assert len(back) == 5
    for play in back:
        assert "_raykit_switch_failures | length > 0" in play["tasks"][0]["when"]
    last = body[-1]
    assert last["hosts"] == "localhost"
    fail = [t for t in last["tasks"] if "ansible.builtin.fail" in t]
    assert fail and fail[0]["when"].endswith("and _failures | length > 0")


def test_only_the_hosts_an_upgrade_moves_take_part() -> None:
    """upgrade.yml puts every host in raykit_switch_hosts only when one of them moves to another
    venv (rollback.yml always does): every play of the switch on the nodes is limited to it, and
    the control node's plays do nothing without it, so an upgrade to what runs stops nothing."""
    for play in plays("switch.yml"):
        if "hosts" not in play:
            continue
        if play["hosts"] == "localhost":
            assert all("'raykit_switch_hosts' in groups" in t["when"] for t in play["tasks"])
        else:
            assert play["hosts"].endswith(":&raykit_switch_hosts"), play["name"]
    for name in ("upgrade.yml", "rollback.yml"):
        keys = [
            t["ansible.builtin.group_by"]["key"]
            for p in plays(name)
            for t in p.get("tasks", [])
            if "ansible.builtin.group_by" in t
        ]
        assert keys == ["raykit_switch_hosts"], name


def test_upgrade_stages_the_venv_and_both_operations_may_switch() -> None:
    for name in ("upgrade.yml", "rollback.yml"):
        body = plays(name)
        assert body[0]["ansible.builtin.import_playbook"] == "preflight.yml"
        assert body[0]["vars"] == {"raykit_switching": True}
        assert body[-1]["ansible.builtin.import_playbook"] == "switch.yml"
    runtime = [
        p for p in plays("upgrade.yml") if p.get("ansible.builtin.import_playbook") == "runtime.yml"
    ]
    assert runtime[0]["vars"] == {"ray_venv_activate": False}
