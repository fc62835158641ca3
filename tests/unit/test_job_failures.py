"""raykit.jobs.explain_failure: the line that says why a job failed, from Ray's message and
the job's log, on the failures of tests/fixtures/job_failures (a lost node, a task's
ValueError, a job stopped by the user, a task killed for memory) and on shorter texts."""

from __future__ import annotations

import json

import pytest

from raykit.jobs import CAUSE_LIMIT, DETAIL_LINES, Failure, explain_failure, plain_text
from support import REPO

FIXTURES = REPO / "tests" / "fixtures" / "job_failures"
RAYLET = "\x1b[33m(raylet, ip=10.89.0.12)\x1b[0m"  # as Ray relays the raylet's lines


def recorded(name: str) -> tuple[str, str, str]:
    """(status, message, log) of a fixture."""
    d = FIXTURES / name
    meta = json.loads((d / "meta.json").read_text())
    return meta["status"], (d / "message.txt").read_text(), (d / "job.log").read_text()


def explain(name: str) -> Failure:
    return explain_failure(*recorded(name))


# ---------------------------------------------------------------- the fixtures


def test_an_actor_lost_with_its_node_is_named_not_the_raylets_stack_dump() -> None:
    status, message, log = recorded("actor-lost-node-death")
    # What the report said before: the last line of Ray's message, a relayed stack frame.
    assert message.rstrip().splitlines()[-1].endswith("raylet(+0x8bbdcb)")
    failure = explain_failure(status, message, log)
    assert failure.cause.startswith(
        "ray.exceptions.ActorUnavailableError: The actor c8f9d3a2b17e5f4a6d0b9e8c02000000 is "
        "unavailable: The actor is temporarily unavailable: RpcError: RPC Error message: "
        "Socket closed; RPC Error details: rpc_code: 14."
    )
    assert len(failure.cause) == CAUSE_LIMIT and failure.cause.endswith("…")
    assert "\x1b" not in failure.cause + failure.detail
    # The detail is the driver's traceback, without the relayed lines around it.
    assert failure.detail.startswith("Traceback (most recent call last):\n")
    assert 'fake_nn_balanced.py", line 96, in run' in failure.detail
    assert failure.detail.endswith("The task may or may not have been executed on the actor.")
    assert "raylet" not in failure.detail.replace("ray/", "")


def test_recorded_a_killed_raylet_names_the_lost_actor_and_why() -> None:
    failure = explain("recorded-raylet-killed")
    assert failure.cause.startswith(
        "ray.exceptions.ActorUnavailableError: The actor ebc2f75c11b51c52387b7e7f02000000 is "
        "unavailable: The actor is temporarily unavailable: UnexpectedSystemExit: Worker exits"
    )
    assert failure.detail.startswith("Traceback (most recent call last):\n")


def test_a_tasks_value_error_names_the_error_and_where_it_ran() -> None:
    failure = explain("task-value-error")
    assert failure.cause == (
        "ValueError: shapes (100,) and (1000,1000) not aligned: 100 (dim 0) != 1000 (dim 0) "
        "(in ray::forward(), pid=2417, ip=10.89.0.13)"
    )
    assert "ray.exceptions.RayTaskError(ValueError): ray::forward() (pid=2417" in failure.detail
    # The script wrapper's result line after the traceback is not part of it.
    assert "RAYKIT_RESULT" not in failure.detail


def test_a_job_stopped_by_the_user_says_so() -> None:
    assert explain("stopped-by-user") == Failure("Job was intentionally stopped.", "")


def test_a_task_killed_for_memory_names_the_node_and_its_figures() -> None:
    failure = explain("out-of-memory")
    assert failure.cause.startswith(
        "ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on "
        "memory. Memory on the node (IP: 10.89.0.13, ID: 5b0f"
    )
    assert failure.cause.endswith("was 3.71GB used / 3.88GB limit (0.955842)")
    assert "Refer to the documentation on how to address the out of memory issue" in (
        failure.detail
    )


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("actor-lost-node-death", "ray.exceptions.ActorUnavailableError: The actor c8f9"),
        ("task-value-error", "ValueError: shapes (100,) and (1000,1000) not aligned"),
        ("stopped-by-user", "Job was intentionally stopped."),
        # Ray's message keeps only the log's last 10 lines: here, after the exception's line.
        ("out-of-memory", "Job entrypoint command failed with exit code 1"),
    ],
)
def test_without_the_log_rays_message_serves(name: str, start: str) -> None:
    status, message, _ = recorded(name)
    failure = explain_failure(status, message, "(the job's log could not be read: timeout)")
    assert failure.cause.startswith(start)
    assert "last available logs" not in failure.cause


# ---------------------------------------------------------------- shorter texts

ACTOR_DIED = """\
Traceback (most recent call last):
  File "/tmp/ray/session_x/runtime_resources/py_modules_files/_ray_pkg_1/workloads/_common.py", line 132, in wait_all
    return ray.get(list(refs))
  File "/opt/raykit/venvs/v/lib/python3.13/site-packages/ray/_private/worker.py", line 3023, in get
    raise value
ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.
\tclass_name: FakeNN
\tactor_id: 3d6b2f0a9c8e1d7f5a4b3c2e01000000
\tpid: 2211
\tnamespace: 6c1e9f7a-2b4d-4e8f-9a1c-3d5e7f9b1a2c
\tip: 10.89.0.12
The actor is dead because its node has died. Node Id: 8c0e4a1f
\tthe actor's node was terminated unexpectedly: health check failed due to missing too many heartbeats
"""  # noqa: E501


def test_actor_died_names_the_reason_after_its_indented_fields() -> None:
    failure = explain_failure("FAILED", "", ACTOR_DIED)
    assert failure.cause == (
        "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task. "
        "The actor is dead because its node has died. Node Id: 8c0e4a1f"
    )
    assert failure.detail == ACTOR_DIED.rstrip()


def test_an_actor_that_failed_in_its_constructor() -> None:
    log = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 3, in <module>\n'
        "ray.exceptions.ActorDiedError: The actor died because of an error raised in its "
        "creation task, \x1b[36mray::FakeNN.__init__()\x1b[39m (pid=2211, ip=10.89.0.12, "
        "actor_id=3d6b2f0a9c8e1d7f5a4b3c2e01000000, repr=<workloads.fake_nn.FakeNN object at "
        "0x7f2b1c>)\n"
        '  File "/w/workloads/fake_nn.py", line 44, in make_network\n'
        "    for shape in PRESETS[preset]:\n"
        "KeyError: 'medium'\n"
    )
    assert explain_failure("FAILED", "", log).cause == (
        "KeyError: 'medium' (in ray::FakeNN.__init__(), pid=2211, ip=10.89.0.12)"
    )


def test_the_last_of_chained_tracebacks() -> None:
    log = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in <module>\n'
        "KeyError: 'x'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 3, in <module>\n'
        "RuntimeError: no x\n"
        "2026-12-01 21:07:15,230\tINFO worker.py:2150 -- shutting down\n"
    )
    failure = explain_failure("FAILED", "Job entrypoint command failed with exit code 1", log)
    assert failure.cause == "RuntimeError: no x"
    assert failure.detail.endswith("RuntimeError: no x")


def test_without_a_traceback_the_last_exception_line() -> None:
    log = (
        "ray.exceptions.NodeDiedError: The node 10.89.0.12 has died: marked dead after missing "
        "its heartbeats\n"
        f"{RAYLET} *** SIGTERM received at time=1764623234 on cpu 1 ***\n"
        f"{RAYLET}     @     0x5603c28bbdcb  (unknown)  raylet(+0x8bbdcb)\n"
    )
    assert explain_failure("FAILED", "", log).cause == (
        "ray.exceptions.NodeDiedError: The node 10.89.0.12 has died: marked dead after missing "
        "its heartbeats"
    )


def test_relayed_lines_count_when_nothing_else_does() -> None:
    log = (
        'RAYKIT_PROGRESS {"done": 3, "total": 10}\n'
        "\x1b[36m(FakeNN pid=2211, ip=10.89.0.12)\x1b[0m ValueError: bad batch"
        "\x1b[32m [repeated 3x across cluster]\x1b[0m\n"
        f"{RAYLET} *** SIGTERM received at time=1 on cpu 1 ***\n"
    )
    assert explain_failure("FAILED", "", log).cause == "ValueError: bad batch"


def test_nothing_to_go_on() -> None:
    assert explain_failure("FAILED", "", "") == Failure("", "")
    # A traceback cut off before its exception: Ray's message then.
    failure = explain_failure(
        "FAILED",
        "Job entrypoint command failed with exit code -9, last available logs (truncated to "
        "20,000 chars):\nTraceback (most recent call last):\n",
        'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n',
    )
    assert failure == Failure("Job entrypoint command failed with exit code -9", "")


def test_a_long_cause_keeps_its_class_and_start() -> None:
    log = "Traceback (most recent call last):\nValueError: " + "x" * 1000 + "\n"
    cause = explain_failure("FAILED", "", log).cause
    assert len(cause) == CAUSE_LIMIT
    assert cause.startswith("ValueError: xxx") and cause.endswith("x…")


def test_a_long_traceback_keeps_its_head_and_its_end() -> None:
    frames = [f'  File "a.py", line {i}, in f{i}\n    f{i + 1}()' for i in range(100)]
    log = "Traceback (most recent call last):\n" + "\n".join(frames) + "\nRecursionError: deep\n"
    detail = explain_failure("FAILED", "", log).detail.splitlines()
    assert len(detail) == DETAIL_LINES
    assert detail[0] == "Traceback (most recent call last):"
    assert detail[1] == "  ... (143 lines left out)"
    assert detail[-1] == "RecursionError: deep"


def test_plain_text_removes_terminal_escapes_only() -> None:
    text = (
        "\x1b[1m\x1b[32mhttp://10.89.0.11:8265 \x1b[39m\x1b[22m\t"
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b(Bdone\r\n\x07next"
    )
    assert plain_text(text) == "http://10.89.0.11:8265 \tlink done\nnext"
