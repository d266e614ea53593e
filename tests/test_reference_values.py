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
        "chelsea.png": (0.290887, -0.727938, 1.309713),
        "chelsea_edited.png": (-0.119963, -1.13901, 0.899084),
        "coffee.png": (0.389731, -0.885512, 1.664974),
    },
    "scores image only": {
        "astronaut.png": (-0.288507, -1.45421, 0.877196),
        "chelsea.png": (0.190789, -0.963483, 1.345062),
        "chelsea_edited.png": (0.122944, -1.031796, 1.277683),
        "coffee.png": (0.437059, -1.010071, 1.88419),
    },
    "core map": {
        "astronaut.png": {"mean": 0.651701, "std": 0.160177, "q25": 0.547163, "raw_mean": -0.288916, "raw_min": -5.305334, "raw_max": 2.392083},
        "chelsea.png": {"mean": 0.616537, "std": 0.188492, "q25": 0.507488, "raw_mean": -0.550213, "raw_min": -5.827533, "raw_max": 2.732078},
        "chelsea_edited.png": {"mean": 0.606112, "std": 0.181985, "q25": 0.505454, "raw_mean": -0.502496, "raw_min": -5.348722, "raw_max": 2.646879},
        "coffee.png": {"mean": 0.661274, "std": 0.168258, "q25": 0.550635, "raw_mean": -0.471539, "raw_min": -5.358811, "raw_max": 2.031879},
    },
}


def measure(model=None) -> dict:
    """The values :data:`REFERENCE` pins, measured now with ``model`` (default: the bundled one, loaded)."""
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
