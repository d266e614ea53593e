"""Reference values (pyiqa's habit): the bundled model's numbers on the example images, pinned on CPU.

Tests elsewhere check the examples' order; these check their values, so a changed default (a
resize, a map reading, the head) fails here even when the order holds. After a deliberate
change (a retrained model, a new map reading), regenerate the table and paste it over
:data:`REFERENCE`::

    python tests/test_reference_values.py
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples" / "images"
#: Absolute tolerance of every value (CPU, fp32).
TOLERANCE = 1e-4

#: The numbers to update in one place: realness-core-lite on examples/images, CPU, fp32.
#: scores: (score, interval low, interval high) with examples/descriptions.csv and image-only;
#: core map: statistics of RealnessMapper(method="core")'s map ([0, 1]) and raw map.
REFERENCE = {
    "scores with descriptions": {
        "astronaut.png": (-0.03919, -1.068232, 0.989851),
        "chelsea.png": (0.290886, -0.72794, 1.309712),
        "chelsea_edited.png": (-0.119963, -1.13901, 0.899083),
        "coffee.png": (0.389732, -0.885511, 1.664975),
    },
    "scores image only": {
        "astronaut.png": (-0.288511, -1.454214, 0.877192),
        "chelsea.png": (0.190792, -0.963481, 1.345064),
        "chelsea_edited.png": (0.12294, -1.031799, 1.27768),
        "coffee.png": (0.437064, -1.010066, 1.884194),
    },
    "core map": {
        "astronaut.png": {"mean": 0.651717, "std": 0.160178, "q25": 0.547182, "raw_mean": -0.288957, "raw_min": -5.305655, "raw_max": 2.392009},
        "chelsea.png": {"mean": 0.616523, "std": 0.188504, "q25": 0.50747, "raw_mean": -0.549994, "raw_min": -5.826755, "raw_max": 2.732154},
        "chelsea_edited.png": {"mean": 0.606135, "std": 0.181975, "q25": 0.505472, "raw_mean": -0.502554, "raw_min": -5.349206, "raw_max": 2.646783},
        "coffee.png": {"mean": 0.66126, "std": 0.168262, "q25": 0.550592, "raw_mean": -0.471548, "raw_min": -5.35856, "raw_max": 2.031892},
    },
}


def measure(model=None) -> dict:
    """The values :data:`REFERENCE` pins, measured now with ``model`` (default: the bundled one, loaded), on one
    CPU thread: float32 sums come out the same whatever thread count an earlier test or the machine left."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(model)
    finally:
        torch.set_num_threads(threads)


def _measure(model=None) -> dict:
    from realness.core import CoreModel, RealnessScorer
    from realness.core.pretrained import DEFAULT_MODEL
    from realness.dream import RealnessMapper

    with open(REPO_ROOT / "examples" / "descriptions.csv", newline="") as handle:
        descriptions = {row["filename"]: row["description"] for row in csv.DictReader(handle)}
    names = sorted(descriptions)
    model = model if model is not None else CoreModel.from_pretrained(DEFAULT_MODEL)
    scorer = RealnessScorer(model, device="cpu", precision="fp32")
    found: dict = {}
    for key, texts in (("scores with descriptions", [descriptions[n] for n in names]), ("scores image only", None)):
        result = scorer([EXAMPLES / n for n in names], texts)
        found[key] = {
            name: tuple(round(float(v), 6) for v in (score, *interval))
            for name, score, interval in zip(names, result.scores, result.interval)
        }
    maps = RealnessMapper(method="core", core_model=model, device="cpu", precision="fp32")([str(EXAMPLES / n) for n in names])
    found["core map"] = {
        name: {
            key: round(float(value), 6)
            for key, value in (
                ("mean", m.map.mean()), ("std", m.map.std()), ("q25", np.quantile(m.map, 0.25)),
                ("raw_mean", m.raw.mean()), ("raw_min", m.raw.min()), ("raw_max", m.raw.max()),
            )
        }
        for name, m in zip(names, maps)
    }
    return found


@pytest.fixture(scope="module")
def measured(lite_model) -> dict:
    return measure(lite_model)


def far_apart(expected, found) -> bool:
    return not all(math.isclose(a, b, abs_tol=TOLERANCE) for a, b in zip(expected, found, strict=True))


@pytest.mark.parametrize("key", ["scores with descriptions", "scores image only"])
def test_example_scores_and_intervals_match_the_reference(measured, key):
    off = {name: (REFERENCE[key][name], found) for name, found in measured[key].items() if far_apart(REFERENCE[key][name], found)}
    assert sorted(measured[key]) == sorted(REFERENCE[key]) and not off, off


def test_example_core_map_statistics_match_the_reference(measured):
    expected, found = REFERENCE["core map"], measured["core map"]
    off = {
        name: (expected[name], stats)
        for name, stats in found.items()
        if sorted(stats) != sorted(expected[name]) or far_apart([expected[name][k] for k in sorted(stats)], [stats[k] for k in sorted(stats)])
    }
    assert sorted(found) == sorted(expected) and not off, off


def formatted(values: dict) -> str:
    """``values`` as the ``REFERENCE = {...}`` source above, one image a line."""
    lines = ["REFERENCE = {"]
    for key, table in values.items():
        lines.append(f"    {json.dumps(key)}: {{")
        lines += [f"        {json.dumps(name)}: {value if isinstance(value, tuple) else json.dumps(value)}," for name, value in table.items()]
        lines.append("    },")
    return "\n".join([*lines, "}"])


if __name__ == "__main__":
    print(formatted(measure()))
