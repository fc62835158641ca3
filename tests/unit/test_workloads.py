"""The workloads package without a Ray cluster: parameters, checksums, the output protocol,
the networks and inputs, and the two command lines' error paths."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from support import REPO

# The package lives at the repository's top (shipped to the cluster as a py_modules entry),
# not in the installed raykit package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workloads import _common, fake_nn, fake_nn_balanced, forward_remote, simple_tasks
from workloads.registry import WORKLOADS, coerce, defaults, parse_sets

# ---------------------------------------------------------------- parameters


def test_registry_names() -> None:
    assert list(WORKLOADS) == ["simple_tasks", "fake_nn", "fake_nn_balanced", "forward_remote"]
    for name, module in WORKLOADS.items():
        assert callable(module.run), name


def test_defaults_are_the_seeds() -> None:
    assert parse_sets("simple_tasks", []) == {"tasks": 5, "sleep_s": 1.0}
    assert parse_sets("fake_nn", []) == {
        "preset": "large",
        "task_num": 100000,
        "batch_size": 10,
        "actors": 10,
        "seed": 0,
        "placement": "spread",
        "weight_scale": 1.0,
    }
    assert parse_sets("fake_nn_balanced", []) == {
        **parse_sets("fake_nn", []),
        "inflight": 2,
        "retries": 0,  # not the seed's; 0 keeps its behaviour
    }
    assert parse_sets("forward_remote", []) == {
        "inputs": 20,
        "input_size": 100,
        "layers": [1000, 1000, 1000, 1000],
        "seed": 0,
    }


def test_parse_sets_coerces_to_the_defaults_type() -> None:
    params = parse_sets(
        "fake_nn",
        ["task_num=200", "preset=small", "weight_scale=0.001", " actors = 3", "seed=-1"],
    )
    assert params["task_num"] == 200 and type(params["task_num"]) is int
    assert params["preset"] == "small"
    assert params["weight_scale"] == 0.001 and type(params["weight_scale"]) is float
    assert params["actors"] == 3
    assert params["seed"] == -1
    assert parse_sets("simple_tasks", ["sleep_s=2"])["sleep_s"] == 2.0
    assert parse_sets("forward_remote", ["layers=10, 20,30"])["layers"] == [10, 20, 30]
    # The last of a repeated key wins, as on any command line.
    assert parse_sets("simple_tasks", ["tasks=1", "tasks=7"])["tasks"] == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("off", False), ("False", False)],
)
def test_coerce_bool(text: str, expected: bool) -> None:
    assert coerce("flag", text, False) is expected


def test_coerce_bool_rejects_other_words() -> None:
    with pytest.raises(ValueError, match=r"flag='maybe': expected a boolean"):
        coerce("flag", "maybe", True)


def test_unknown_key_names_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown parameter 'task_nm' for fake_nn") as err:
        parse_sets("fake_nn", ["task_nm=5"])
    assert "did you mean 'task_num'?" in str(err.value)
    assert "parameters: preset, task_num" in str(err.value)


def test_unknown_key_with_nothing_close() -> None:
    with pytest.raises(ValueError, match=r"unknown parameter 'zzz'") as err:
        parse_sets("simple_tasks", ["zzz=1"])
    assert "did you mean" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "item", "message"),
    [
        ("fake_nn", "task_num=many", r"task_num='many': expected an integer"),
        ("fake_nn", "task_num=1.5", r"task_num='1.5': expected an integer"),
        ("simple_tasks", "sleep_s=soon", r"sleep_s='soon': expected a number"),
        ("forward_remote", "layers=1000,x", r"layers='1000,x': expected a comma-separated list"),
        ("forward_remote", "layers=", r"layers='': expected a comma-separated list"),
        ("fake_nn", "task_num", r"--set 'task_num': expected key=value"),
        ("fake_nn", "=3", r"--set '=3': expected key=value"),
    ],
)
def test_bad_values(name: str, item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sets(name, [item])


@pytest.mark.parametrize("name", ["fake_nn", "fake_nn_balanced"])
def test_choices(name: str) -> None:
    with pytest.raises(ValueError, match=r"preset='medium': must be one of large, small"):
        parse_sets(name, ["preset=medium"])
    with pytest.raises(ValueError, match=r"must be one of spread, default; did you mean 'spread'"):
        parse_sets(name, ["placement=sprad"])
    assert parse_sets(name, ["placement=default"])["placement"] == "default"


def test_unknown_workload() -> None:
    with pytest.raises(ValueError, match=r"unknown workload 'fake'; did you mean 'fake_nn'"):
        parse_sets("fake", [])


def test_defaults_come_from_run() -> None:
    assert defaults("simple_tasks") == {"tasks": 5, "sleep_s": 1.0}
    assert "progress" not in defaults("fake_nn_balanced")


@pytest.mark.parametrize(
    ("run", "kwargs", "message"),
    [
        (fake_nn.run, {"preset": "medium"}, "preset must be one of"),
        (fake_nn.run, {"batch_size": 0}, "batch_size must be >= 1"),
        (fake_nn.run, {"actors": 0}, "actors must be >= 1"),
        (fake_nn_balanced.run, {"inflight": 0}, "inflight must be >= 1"),
        (fake_nn_balanced.run, {"retries": -1}, "retries must be >= 0"),
        (fake_nn_balanced.run, {"placement": "pack"}, "placement must be one of"),
        (forward_remote.run, {"inputs": -1}, "inputs must be >= 0"),
        (forward_remote.run, {"layers": []}, "layers not empty"),
        (simple_tasks.run, {"tasks": -1}, "tasks must be >= 0"),
    ],
)
def test_run_checks_before_touching_ray(
    run: Callable[..., object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(**kwargs)


@pytest.mark.parametrize(
    ("name", "sets", "message"),
    [
        ("simple_tasks", ["tasks=-3"], "tasks must be >= 0, got -3"),
        ("simple_tasks", ["sleep_s=-1"], "sleep_s must be >= 0"),
        ("fake_nn", ["task_num=-1"], "task_num must be >= 0"),
        ("fake_nn", ["batch_size=0"], "batch_size must be >= 1"),
        ("fake_nn", ["actors=0"], "actors must be >= 1"),
        ("fake_nn", ["weight_scale=nan"], "weight_scale must be finite"),
        ("fake_nn_balanced", ["inflight=0"], "inflight must be >= 1"),
        ("fake_nn_balanced", ["retries=-1"], "retries must be >= 0, got -1"),
        ("fake_nn_balanced", ["retries=2.5"], "retries='2.5': expected an integer"),
        ("forward_remote", ["inputs=-2"], "inputs must be >= 0"),
        ("forward_remote", ["layers=10,0"], "every layer must be >= 1"),
    ],
)
def test_parse_sets_applies_the_workloads_own_checks(
    name: str, sets: list[str], message: str
) -> None:
    """The checks run() makes, made while parsing: a bad value never reaches the cluster."""
    with pytest.raises(ValueError, match=message):
        parse_sets(name, sets)


def test_retries_is_opt_in_and_recorded() -> None:
    params = parse_sets("fake_nn_balanced", ["retries=3"])
    assert params["retries"] == 3
    assert "retries" not in parse_sets("fake_nn", [])  # the seed's round robin: no retries
    with pytest.raises(ValueError, match=r"unknown parameter 'retries' for fake_nn"):
        parse_sets("fake_nn", ["retries=3"])


@pytest.mark.parametrize(
    ("placement", "retries", "options"),
    [
        ("spread", 0, {"scheduling_strategy": "SPREAD"}),
        ("default", 0, {}),
        (
            "spread",
            3,
            {"scheduling_strategy": "SPREAD", "max_restarts": 3, "max_task_retries": 3},
        ),
        ("default", 1, {"max_restarts": 1, "max_task_retries": 1}),
    ],
)
def test_actor_options_from_placement_and_retries(
    placement: str, retries: int, options: dict[str, object]
) -> None:
    assert fake_nn.actor_options(placement, retries) == options
    # Ray itself accepts them (it checks the options without a cluster).
    fake_nn.FakeNN.options(**options)


def test_start_actors_creates_the_actors_with_the_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fake_nn_balanced's run passes `retries` to the actors it creates; fake_nn's none."""
    created: list[dict[str, object]] = []

    class Handle:
        class node_ip:  # as an actor method is called: handle.node_ip.remote()
            @staticmethod
            def remote() -> str:
                return "10.89.0.12"

    class Actors:
        @staticmethod
        def options(**options: object) -> Actors:
            created.append(options)
            return Actors()

        def remote(self, *args: object) -> Handle:
            return Handle()

    monkeypatch.setattr(fake_nn, "FakeNN", Actors)
    monkeypatch.setattr(fake_nn.ray, "get", lambda refs: list(refs))
    handles, ips = fake_nn.start_actors("small", 2, 0, "spread", 1.0, retries=2)
    assert len(handles) == 2 and ips == ["10.89.0.12"] * 2
    assert (
        created == [{"scheduling_strategy": "SPREAD", "max_restarts": 2, "max_task_retries": 2}] * 2
    )
    created.clear()
    fake_nn.start_actors("small", 1, 0, "spread", 1.0)
    assert created == [{"scheduling_strategy": "SPREAD"}]


def test_fake_nn_balanced_run_asks_for_its_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[object] = []

    def start_actors(*args: object) -> tuple[list[object], list[str]]:
        asked.append(args[-1])  # (preset, actors, seed, placement, weight_scale, retries)
        raise RuntimeError("stop here: no cluster")

    monkeypatch.setattr(fake_nn_balanced, "start_actors", start_actors)
    monkeypatch.setattr(fake_nn_balanced._common, "cluster_info", dict)
    for retries in (0, 4):
        with pytest.raises(RuntimeError, match="no cluster"):
            fake_nn_balanced.run(preset="small", task_num=10, retries=retries)
    assert asked == [0, 4]


# ---------------------------------------------------------------- checksum


def test_checksum_is_sha256_of_rounded_float64() -> None:
    expected = hashlib.sha256(np.array([1.0, 2.5, 9.0], dtype="<f8").tobytes()).hexdigest()
    assert _common.checksum([1, 2.5, 9]) == expected
    assert _common.checksum([np.array([1.0, 2.5]), [9.0]]) == expected
    assert _common.checksum([[np.array([1.0]), np.array([2.5])], np.float32(9.0)]) == expected


def test_checksum_is_stable_and_rounds_to_6_decimals() -> None:
    rng = np.random.default_rng(7)
    outputs = [rng.random(5) for _ in range(4)]
    first = _common.checksum(outputs)
    assert _common.checksum(outputs) == first
    assert _common.checksum([o.copy() for o in outputs]) == first
    assert _common.checksum([o + 1e-9 for o in outputs]) == first
    assert _common.checksum([o + 1e-5 for o in outputs]) != first
    assert _common.checksum([-0.0, 1e-9, -1e-9]) == _common.checksum([0.0, 0.0, 0.0])


def test_checksum_depends_on_order() -> None:
    assert _common.checksum([1.0, 2.0]) != _common.checksum([2.0, 1.0])
    assert _common.checksum([]) == hashlib.sha256(b"").hexdigest()


def test_output_sum() -> None:
    total = _common.output_sum([np.array([1.0, 2.0]), [[3.0], [4.0]], 0.5])
    assert total == 10.5 and type(total) is float
    assert _common.output_sum([]) == 0.0


# ---------------------------------------------------------------- protocol


def test_protocol_line_format() -> None:
    payload = {"done": 3, "total": np.int64(10), "x": np.float64(0.5), "a": np.arange(2)}
    line = _common.protocol_line("progress", payload)
    assert line.startswith("RAYKIT_PROGRESS {")
    assert "\n" not in line
    _, _, text = line.partition(" ")
    assert json.loads(text) == {"done": 3, "total": 10, "x": 0.5, "a": [0, 1]}
    assert _common.parse_line(line) == ("PROGRESS", {"done": 3, "total": 10, "x": 0.5, "a": [0, 1]})


def test_protocol_line_is_one_line_for_any_payload() -> None:
    line = _common.protocol_line("RESULT", {"text": "two\nlines", "nested": {"k": [1, 2]}})
    assert "\n" not in line
    assert _common.parse_line(line) == ("RESULT", {"text": "two\nlines", "nested": {"k": [1, 2]}})


def test_protocol_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown kind 'LOG'"):
        _common.protocol_line("LOG", {})
    assert _common.parse_line("RAYKIT_LOG {}") is None
    assert _common.parse_line("(square pid=1) task 0 running") is None


def test_emit_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _common.emit("RESULT", {"wall_s": 1.5, "exit_code": 0})
    assert capsys.readouterr().out == 'RAYKIT_RESULT {"exit_code": 0, "wall_s": 1.5}\n'


def test_manifest_needs_no_cluster() -> None:
    m = _common.manifest()
    assert m["python"] == ".".join(map(str, sys.version_info[:3]))
    assert m["python_executable"] == sys.executable
    assert m["venv"] == sys.prefix
    assert m["ray"] == "2.60.0"
    assert m["hostname"]


# ---------------------------------------------------------------- progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_throttled_and_ends_with_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(_common.time, "monotonic", clock)
    calls: list[tuple[int, int]] = []
    progress = _common.Progress(lambda d, t: calls.append((d, t)), 100)
    for done in range(1, 60):  # all within the same instant: only the first passes
        progress(done)
    clock.now += 0.6
    progress(60)
    clock.now += 0.1
    progress(61)  # too soon
    progress(100)  # the final call always passes, once
    progress(100)
    assert calls == [(1, 100), (60, 100), (100, 100)]


def test_progress_none_does_nothing() -> None:
    _common.Progress(None, 5)(5)


# ---------------------------------------------------------------- networks and inputs


def test_network_shapes_per_preset() -> None:
    shapes = {
        preset: [(w.shape, b.shape) for w, b in fake_nn.make_network(preset)]
        for preset in fake_nn.PRESETS
    }
    assert shapes == {
        "large": [((1000, 1000), (1000,))] * 3,
        "small": [((1000, 150), (150,)), ((150, 150), (150,)), ((150, 100), (100,))],
    }
    assert fake_nn.input_dim("small") == fake_nn.input_dim("large") == 1000


def test_network_is_the_same_for_every_actor() -> None:
    a = fake_nn.make_network("small", seed=3)
    b = fake_nn.make_network("small", seed=3)
    c = fake_nn.make_network("small", seed=4)
    pairs = [(x, y) for la, lb in zip(a, b, strict=True) for x, y in zip(la, lb, strict=True)]
    assert all(np.array_equal(x, y) for x, y in pairs)
    assert not np.array_equal(a[0][0], c[0][0])
    w, b1 = a[0]
    assert w.min() >= 0.0 and w.max() < 1.0 and b1.min() >= 0.0 and b1.max() < 1.0


def test_forward_output_shape_and_saturation() -> None:
    x = fake_nn.batch_inputs(0, 0, 1, 1000)[0]
    # The seed's weights (uniform [0, 1)): every pre-activation is in the hundreds, so the
    # sigmoid gives exactly 1.0, whatever the seed. weight_scale keeps it in its live range.
    assert np.array_equal(fake_nn.forward(fake_nn.make_network("small"), x), np.ones(100))
    live = fake_nn.forward(fake_nn.make_network("small", weight_scale=0.001), x)
    assert live.shape == (100,)
    assert 0.5 < live.min() < live.max() < 1.0


def test_inputs_are_deterministic_per_batch() -> None:
    x = fake_nn.batch_inputs(0, 5, 10, 1000)
    assert x.shape == (10, 1000)
    assert x.min() >= 0.0 and x.max() < 1.0
    assert np.array_equal(x, fake_nn.batch_inputs(0, 5, 10, 1000))
    assert not np.array_equal(x, fake_nn.batch_inputs(0, 6, 10, 1000))
    assert not np.array_equal(x, fake_nn.batch_inputs(1, 5, 10, 1000))
    # A smaller batch is the start of the same stream.
    assert np.array_equal(fake_nn.batch_inputs(0, 5, 3, 1000), x[:3])


def test_batch_sizes() -> None:
    assert fake_nn.batch_sizes(100000, 10) == [10] * 10000
    assert fake_nn.batch_sizes(25, 10) == [10, 10, 5]
    assert fake_nn.batch_sizes(0, 10) == []


def test_forward_remote_weights_and_inputs() -> None:
    weights = forward_remote.make_weights(100, [1000, 1000, 1000, 1000], seed=0)
    assert [w.shape for w in weights] == [(100, 1000)] + [(1000, 1000)] * 3
    again = forward_remote.make_weights(100, [1000, 1000, 1000, 1000], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again, strict=True))
    x = forward_remote.make_input(0, 3, 100)
    assert x.shape == (100,)
    assert np.array_equal(x, forward_remote.make_input(0, 3, 100))
    assert not np.array_equal(x, forward_remote.make_input(0, 4, 100))
    value = forward_remote.forward(x, weights)
    assert isinstance(value, float) and value > 0.0


def test_forward_remote_relu() -> None:
    weights = [np.array([[1.0, -1.0], [1.0, -1.0]]), np.array([[2.0], [5.0]])]
    # [1, 2] -> [3, -3] -> relu [3, 0] -> [6] -> relu -> 6
    assert forward_remote.forward(np.array([1.0, 2.0]), weights) == 6.0


# ---------------------------------------------------------------- command lines


def python_m(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


def protocol(stdout: str) -> list[tuple[str, dict[str, object]]]:
    return [p for p in map(_common.parse_line, stdout.splitlines()) if p is not None]


def test_cli_bad_set_exits_2_with_the_reason() -> None:
    proc = python_m("workloads", "fake_nn", "--set", "task_nm=5")
    assert proc.returncode == 2
    assert "unknown parameter 'task_nm' for fake_nn; did you mean 'task_num'?" in proc.stderr
    assert "RAYKIT_" not in proc.stdout


def test_cli_bad_value_and_unknown_workload() -> None:
    proc = python_m("workloads", "fake_nn", "--set", "preset=huge")
    assert proc.returncode == 2
    assert "preset='huge': must be one of large, small" in proc.stderr
    proc = python_m("workloads", "forward_remot")
    assert proc.returncode == 2
    assert "did you mean 'forward_remote'?" in proc.stderr


def test_cli_list() -> None:
    proc = python_m("workloads", "--list")
    assert proc.returncode == 0, proc.stderr
    assert "forward_remote: inputs=20 input_size=100 layers=1000,1000,1000,1000 seed=0" in (
        proc.stdout
    )


SCRIPT = """\
import sys
from helper import VALUE  # the script's directory is first on sys.path
print("argv", sys.argv[1:], VALUE, __name__)
action = sys.argv[1] if len(sys.argv) > 1 else ""
if action == "boom":
    raise RuntimeError("boom from the script")
if action == "message":
    sys.exit("a message")
if action:
    sys.exit(int(action))
"""


@pytest.fixture
def user_script(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    path = tmp_path / "user.py"
    path.write_text(SCRIPT)
    return path


@pytest.mark.parametrize(
    ("args", "code"), [([], 0), (["0"], 0), (["3", "x"], 3), (["message"], 1), (["boom"], 1)]
)
def test_script_wrapper(user_script: Path, args: list[str], code: int) -> None:
    proc = python_m("workloads.script", str(user_script), *args)
    assert proc.returncode == code, proc.stderr
    lines = protocol(proc.stdout)
    assert [kind for kind, _ in lines] == ["MANIFEST", "RESULT"]
    assert lines[0][1]["python_executable"] == sys.executable
    result = lines[1][1]
    assert set(result) == {"wall_s", "exit_code", "driver_ended"}
    assert lines[0][1]["driver_started"] <= result["driver_ended"]
    assert result["exit_code"] == code
    assert isinstance(result["wall_s"], float) and result["wall_s"] >= 0.0
    assert f"argv {args} 42 __main__" in proc.stdout
    if args == ["boom"]:
        assert "Traceback" in proc.stderr
        assert "RuntimeError: boom from the script" in proc.stderr
    if args == ["message"]:
        assert "a message" in proc.stderr


def test_script_wrapper_missing_file(tmp_path: Path) -> None:
    proc = python_m("workloads.script", str(tmp_path / "nope.py"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
    assert "RAYKIT_" not in proc.stdout


def test_simple_tasks_script_help_runs_from_any_directory(tmp_path: Path) -> None:
    # As the smoke playbook runs it: a file path, not -m; the package is found from the file.
    proc = subprocess.run(
        [sys.executable, str(REPO / "workloads" / "simple_tasks.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--sleep-s" in proc.stdout


class _Lost(ray.exceptions.RayActorError):
    """What ray.get raises for a call whose actor died with its node."""

    def __init__(self) -> None:
        Exception.__init__(self, "the actor died with its node")


class _FakeCluster:
    """Stands in for ray.wait/ray.get and the actors' predict: `lost` actors fail every call
    (as a killed node's actors do); calls finish in the order they were sent."""

    def __init__(self, actors: int, lost: set[int]) -> None:
        self.lost = lost
        self.calls: list[tuple[int, int]] = []  # (actor, batch marker)
        self.handles = [self._handle(a) for a in range(actors)]

    def _handle(self, actor: int) -> Any:
        cluster = self

        class Method:
            def remote(self, batch: Any) -> tuple[int, Any]:
                cluster.calls.append((actor, batch))
                return (len(cluster.calls), actor, batch)

        class Handle:
            predict = Method()

        return Handle()

    def wait(self, refs: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        refs = sorted(refs)
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: Any) -> Any:
        _, actor, batch = ref
        if actor in self.lost:
            raise _Lost()
        return ("out", batch)


def _dispatch(
    monkeypatch: pytest.MonkeyPatch, actors: int, lost: set[int], retries: int, batches: int = 6
) -> tuple[list[Any], dict[str, int], _FakeCluster]:
    fake = _FakeCluster(actors, lost)
    monkeypatch.setattr(fake_nn_balanced.ray, "wait", fake.wait)
    monkeypatch.setattr(fake_nn_balanced.ray, "get", fake.get)
    monkeypatch.setattr(fake_nn_balanced, "batch_inputs", lambda seed, i, size, dim: i)
    per_node: dict[str, int] = {}
    ips = [f"10.0.0.{a + 1}" for a in range(actors)]
    outputs = fake_nn_balanced.dispatch(
        fake.handles, ips, [10] * batches, 0, 4, 1, retries, per_node, lambda done: None
    )
    return outputs, per_node, fake


def test_dispatch_without_a_loss_sends_each_batch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs, per_node, fake = _dispatch(monkeypatch, 2, set(), retries=0)
    assert outputs == [("out", i) for i in range(6)]
    assert sorted(b for _, b in fake.calls) == list(range(6))
    assert sum(per_node.values()) == 6


def test_dispatch_sends_a_lost_actors_batches_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs, per_node, fake = _dispatch(monkeypatch, 3, {1}, retries=2)
    assert outputs == [("out", i) for i in range(6)]  # every batch, in order
    assert set(per_node) == {"10.0.0.1", "10.0.0.3"}  # answered by the two left
    assert sum(per_node.values()) == 6
    assert [b for a, b in fake.calls if a == 1] == [1]  # the lost actor got nothing more


def test_dispatch_without_retries_fails_on_a_lost_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ray.exceptions.RayActorError):
        _dispatch(monkeypatch, 3, {1}, retries=0)


def test_dispatch_fails_when_every_actor_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ray.exceptions.RayActorError):
        _dispatch(monkeypatch, 2, {0, 1}, retries=5)


# ---------------------------------------------------------------- work per node


def test_work_counts_calls_and_busy_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 100.5, 103.0, 103.25])  # time.time(): start, end, start, end
    monkeypatch.setattr(_common.time, "time", lambda: next(clock))
    work = _common.Work()
    assert work.to_dict() == {"calls": 0, "busy_s": 0.0, "first_start": None, "last_end": None}
    for _ in range(2):
        with work.call():
            pass
    done = work.to_dict()
    assert done["calls"] == 2 and done["first_start"] == 100.0 and done["last_end"] == 103.25
    assert 0.0 <= done["busy_s"] < 0.1  # perf_counter: the calls themselves took no time


def test_work_counts_a_call_that_raised() -> None:
    work = _common.Work()
    with pytest.raises(ValueError), work.call():
        raise ValueError("boom")
    assert work.calls == 1 and work.last_end is not None


def test_node_work_sums_workers_per_node() -> None:
    done = [
        ("10.0.0.2", {"calls": 3, "busy_s": 1.5, "first_start": 1000.5, "last_end": 1004.0}),
        ("10.0.0.1", {"calls": 5, "busy_s": 2.0, "first_start": 1000.2, "last_end": 1002.0}),
        ("10.0.0.2", {"calls": 2, "busy_s": 1.0, "first_start": 1000.1, "last_end": 1009.0}),
        ("10.0.0.3", {"calls": 0, "busy_s": 0.0, "first_start": None, "last_end": None}),
    ]
    assert _common.node_work(done, start_epoch=1000.0) == {
        "10.0.0.1": {
            "workers": 1,
            "calls": 5,
            "busy_s": 2.0,
            "first_start_s": pytest.approx(0.2),
            "last_end_s": 2.0,
        },
        "10.0.0.2": {
            "workers": 2,
            "calls": 5,
            "busy_s": 2.5,
            "first_start_s": pytest.approx(0.1),
            "last_end_s": 9.0,
        },
        "10.0.0.3": {
            "workers": 1,
            "calls": 0,
            "busy_s": 0.0,
            "first_start_s": None,
            "last_end_s": None,
        },
    }
