"""The workloads by name, and `--set key=value` parsing against each one's parameters.

A workload is a module with `run(**params, progress=None) -> dict`, `check(params)` (raises
ValueError for values `run` would refuse; parse_sets calls it, so they are refused before
submission) and `CHOICES` (the allowed values of its string parameters). Its parameters and
their defaults are `run`'s keyword arguments: the signature is the one place they are written.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from workloads import fake_nn, fake_nn_balanced, forward_remote, simple_tasks

WORKLOADS: dict[str, ModuleType] = {
    "simple_tasks": simple_tasks,
    "fake_nn": fake_nn,
    "fake_nn_balanced": fake_nn_balanced,
    "forward_remote": forward_remote,
}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def workload(name: str) -> ModuleType:
    """The workload's module; ValueError naming the closest one for a typo."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown workload {name!r}{_suggest(name, WORKLOADS)}"
            f" (workloads: {', '.join(WORKLOADS)})"
        ) from None


def defaults(name: str) -> dict[str, Any]:
    """The workload's parameters and their defaults (the seed's figures)."""
    sig = inspect.signature(workload(name).run)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name != "progress" and p.default is not inspect.Parameter.empty
    }


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def coerce(key: str, text: str, default: Any) -> Any:
    """`text` as the type of `default`: bool, int, float, str, or a list of ints ("1000,1000")."""
    kind: str
    try:
        if isinstance(default, bool):
            kind = "a boolean (true/false)"
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(default, int):
            kind = "an integer"
            return int(text.strip())
        if isinstance(default, float):
            kind = "a number"
            return float(text.strip())
        if isinstance(default, (list, tuple)):
            kind = "a comma-separated list of integers, e.g. 1000,1000"
            items = [int(part.strip()) for part in text.split(",")]
            if not items:
                raise ValueError(text)
            return items
    except ValueError:
        raise ValueError(f"{key}={text!r}: expected {kind}") from None
    return text


def parse_sets(name: str, sets: Iterable[str]) -> dict[str, Any]:
    """The workload's parameters: its defaults, overridden by each "key=value" of `sets`.

    Each value takes the type of the default; a key the workload does not have, a value that
    does not parse, or a value outside the parameter's choices raises ValueError with a
    message meant for the user."""
    module = workload(name)
    params = defaults(name)
    choices: dict[str, tuple[str, ...]] = getattr(module, "CHOICES", {})
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value")
        if key not in params:
            raise ValueError(
                f"unknown parameter {key!r} for {name}{_suggest(key, params)}"
                f" (parameters: {', '.join(params)})"
            )
        value = coerce(key, text, params[key])
        if key in choices and value not in choices[key]:
            raise ValueError(
                f"{key}={text!r}: must be one of {', '.join(choices[key])}"
                f"{_suggest(str(value), choices[key])}"
            )
        params[key] = value
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    # The workload's own checks (a negative count, ...), here, before anything is submitted.
    module.check(params)
    return params
