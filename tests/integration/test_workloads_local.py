"""Every workload on a real, local, 2-CPU Ray started by this test process (and only that is
stopped afterwards), with small counts: results add up, and checksums are reproducible across
runs and dispatch, and equal to the same arithmetic done locally."""

from __future__ import annotations

import json
import math
import runpy
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from support import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ray
import workloads.__main__ as workloads_main
from workloads import _common, fake_nn, fake_nn_balanced, forward_remote, simple_tasks
from workloads.registry import WORKLOADS, parse_sets

pytestmark = pytest.mark.integration

SMALL = {"preset": "small", "task_num": 200, "actors": 4}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    # The package reaches the workers as on the cluster: a py_modules entry.
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"py_modules": [str(REPO / "workloads")]},
    )
    try:
        yield
    finally:
        ray.shutdown()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


def run(name: str, **params: Any) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Run through the registry as `python -m workloads` does; check what holds for any
    workload; return the result and the progress calls."""
    full = parse_sets(name, [f"{k}={_text(v)}" for k, v in params.items()])
    progress = Recorder()
    res = WORKLOADS[name].run(**full, progress=progress)
    assert res["workload"] == name
    assert res["params"] == full
    assert sum(res["per_node"].values()) == res["tasks"]
    assert list(res["per_node"]) == [ray.util.get_node_ip_address()]
    assert math.isfinite(res["output_sum"])
    assert len(res["checksum"]) == 64
    assert res["wall_s"] > 0.0
    assert res["nodes"] == 1 and res["cluster_cpus"] == 2.0
    # The final call is (total, total), once, last; done never goes back.
    assert progress.calls[-1] == (res["tasks"], res["tasks"])
    assert progress.calls.count((res["tasks"], res["tasks"])) == 1
    assert [d for d, _ in progress.calls] == sorted(d for d, _ in progress.calls)
    # What `python -m workloads` prints is valid JSON that reads back the same.
    line = _common.protocol_line("RESULT", res)
    assert _common.parse_line(line) == ("RESULT", json.loads(json.dumps(res)))
    return res, progress.calls


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def test_simple_tasks() -> None:
    res, _ = run("simple_tasks", sleep_s=0.1)
    assert res["tasks"] == 5
    assert [r["result"] for r in res["results"]] == [0, 1, 4, 9, 16]
    assert {r["node_ip"] for r in res["results"]} == set(res["per_node"])
    assert res["output_sum"] == 30.0
    assert res["checksum"] == _common.checksum([0, 1, 4, 9, 16])
    # 5 tasks of 0.1 s on 2 CPUs: at least 3 waves.
    assert res["wall_s"] >= 0.3


def test_simple_tasks_as_the_smoke_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As playbooks/smoke.yml runs it: the file, with --json; the remote function travels by
    value (it is defined in __main__), the last line is the result."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = str(REPO / "workloads" / "simple_tasks.py")
    monkeypatch.setattr(sys, "argv", [path, "--tasks", "3", "--sleep-s", "0", "--json"])
    runpy.run_path(path, run_name="__main__")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert [(t["x"], t["result"]) for t in res["results"]] == [(0, 0), (1, 1), (2, 4)]
    assert sum(res["per_node"].values()) == 3
    assert all(t["hostname"] and t["node_id"] for t in res["results"])


def test_fake_nn_small_round_robin_equals_balanced() -> None:
    rr, _ = run("fake_nn", **SMALL)
    assert rr["tasks"] == rr["batches"] == 20
    assert rr["actor_nodes"] == {ray.util.get_node_ip_address(): 4}
    assert rr["dims"] == [[1000, 150], [150, 150], [150, 100]]
    # The seed's weights saturate every sigmoid: 200 inputs x 100 outputs of 1.0.
    assert rr["output_sum"] == 200 * 100.0
    ip = ray.util.get_node_ip_address()
    assert rr["node_cpus"] == {ip: 2.0}
    balanced, _ = run("fake_nn_balanced", **SMALL)
    assert balanced["tasks"] == 20
    assert balanced["checksum"] == rr["checksum"]
    # What the actors did, per node: every call, inside the run's wall time.
    for res in (rr, balanced):
        work = res["node_work"][ip]
        assert set(res["node_work"]) == {ip}
        assert work["workers"] == 4 and work["calls"] == 20
        assert work["busy_s"] > 0.0
        assert -0.05 < work["first_start_s"] < work["last_end_s"] < res["wall_s"] + 0.05
    assert balanced["output_sum"] == rr["output_sum"]


def test_fake_nn_checksum_is_reproducible_and_seeded() -> None:
    params = {**SMALL, "task_num": 205, "weight_scale": 0.001}  # 21 batches, the last of 5
    first, _ = run("fake_nn", **params)
    assert first["tasks"] == 21
    again, _ = run("fake_nn", **{**params, "actors": 3, "placement": "default"})
    balanced, _ = run("fake_nn_balanced", **{**params, "inflight": 3})
    other_seed, _ = run("fake_nn", **{**params, "seed": 1})
    assert again["checksum"] == balanced["checksum"] == first["checksum"]
    assert other_seed["checksum"] != first["checksum"]
    # The same arithmetic, done here: the actors computed what the docstring says.
    network = fake_nn.make_network("small", seed=0, weight_scale=0.001)
    sizes = fake_nn.batch_sizes(205, 10)
    local = [
        [fake_nn.forward(network, x) for x in fake_nn.batch_inputs(0, i, size, 1000)]
        for i, size in enumerate(sizes)
    ]
    assert _common.checksum(local) == first["checksum"]
    assert first["output_sum"] == pytest.approx(_common.output_sum(local), rel=1e-12)


def test_fake_nn_large() -> None:
    res, _ = run("fake_nn", preset="large", task_num=50)
    assert res["tasks"] == 5
    assert res["params"]["actors"] == 10
    assert sum(res["actor_nodes"].values()) == 10
    assert res["dims"] == [[1000, 1000]] * 3
    assert res["output_sum"] == 50 * 1000.0
    assert res["setup_s"] > 0.0


def test_forward_remote() -> None:
    res, _ = run("forward_remote", inputs=4)
    assert res["tasks"] == 4
    assert res["available_cpus"] <= res["cluster_cpus"]
    again, _ = run("forward_remote", inputs=4)
    other_seed, _ = run("forward_remote", inputs=4, seed=1)
    assert again["checksum"] == res["checksum"]
    assert other_seed["checksum"] != res["checksum"]
    weights = forward_remote.make_weights(100, [1000] * 4, seed=0)
    xs = [forward_remote.make_input(0, i, 100) for i in range(4)]
    local = [forward_remote.forward(x, weights) for x in xs]
    assert res["output_sum"] == pytest.approx(sum(local), rel=1e-9)


def test_forward_remote_small_layers() -> None:
    res, _ = run("forward_remote", inputs=3, input_size=8, layers=[16, 4])
    assert res["params"]["layers"] == [16, 4]
    weights = forward_remote.make_weights(8, [16, 4], seed=0)
    local = [forward_remote.forward(forward_remote.make_input(0, i, 8), weights) for i in range(3)]
    assert res["checksum"] == _common.checksum(local)


@pytest.mark.parametrize(
    ("module", "params"),
    [
        (simple_tasks, {"tasks": 0}),
        (fake_nn, {"task_num": 0, "actors": 1}),
        (fake_nn_balanced, {"task_num": 0, "actors": 1}),
        (forward_remote, {"inputs": 0}),
    ],
)
def test_nothing_to_do(module: Any, params: dict[str, Any]) -> None:
    calls = Recorder()
    res = module.run(**params, progress=calls)
    assert res["tasks"] == 0 and res["per_node"] == {}
    assert res["output_sum"] == 0.0
    assert calls.calls == [(0, 0)]


def test_a_failing_task_raises_and_the_actors_go() -> None:
    with pytest.MonkeyPatch.context() as mp:
        # The driver makes 999-float inputs for a 1000-input network: the actors fail.
        mp.setattr(fake_nn, "input_dim", lambda preset: 999)
        with pytest.raises(ValueError, match="not aligned"):
            fake_nn.run(**SMALL)
    assert np.isfinite(run("fake_nn", **{**SMALL, "task_num": 10})[0]["output_sum"])


def test_main_prints_the_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    code = workloads_main.main(["forward_remote", "--set", "inputs=3", "--set", "input_size=8"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    lines = [p for p in map(_common.parse_line, out) if p is not None]
    kinds = [kind for kind, _ in lines]
    assert kinds[0] == "MANIFEST" and kinds[-1] == "RESULT"
    assert set(kinds[1:-1]) == {"PROGRESS"}
    assert lines[-2][1] == {"done": 3, "total": 3}
    assert lines[-1][1]["params"]["input_size"] == 8
    assert any(line.startswith("wall time: ") for line in out)


def test_main_error_has_no_result(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fake_nn, "input_dim", lambda preset: 999)
        with pytest.raises(ValueError, match="not aligned"):
            workloads_main.main(["fake_nn", "--set", "preset=small", "--set", "task_num=20"])
    assert "RAYKIT_RESULT" not in capsys.readouterr().out
