"""``descriptions`` means the same at every entry point: a describer object or name, a ``Path`` table,
a mapping or a list give the same texts to the same images, and one string for several images is refused.

The entry points: ``RealnessScorer`` (the reference), ``select_best`` and ``compare_folders``
(workflows), the core map (``RealnessMapper(method="core")``) and ``score_dataset`` (Ray; its
reading runs on the driver, tested here without starting Ray, and once end to end, marked slow).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.describers import StaticDescriber
from realness.errors import DescriptionsError

KINDS = ("describer object", "describer name", "Path table", "mapping", "list")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[Path, list[Path], dict[str, str]]:
    """Two generators' folders with two outputs each (64 px, distinct pixels), and one text per image."""
    root = tmp_path_factory.mktemp("generators")
    rng = np.random.default_rng(0)
    paths = []
    for model in ("model-a", "model-b"):
        (root / model).mkdir()
        for prompt in ("cat", "dog"):
            path = root / model / f"{prompt}.png"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
            paths.append(path)
    texts = {str(path): f"{path.parent.name} {path.stem}: slightly waxy skin" for path in paths}
    return root, paths, texts


def descriptions_of(kind: str, paths: list[Path], texts: dict[str, str], folder: Path):
    """The ``descriptions`` value of ``kind`` that gives each of ``paths`` its text."""
    table = folder / "descriptions.table.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "description"])
        writer.writerows((path, texts[str(path)]) for path in paths)
    return {
        "describer object": lambda: StaticDescriber({str(path): texts[str(path)] for path in paths}),
        "describer name": lambda: f"static:{table}",
        "Path table": lambda: table,
        "mapping": lambda: {str(path): texts[str(path)] for path in paths},
        "list": lambda: [texts[str(path)] for path in paths],
    }[kind]()


@pytest.mark.parametrize("kind", KINDS)
def test_the_scorer_and_select_best_give_each_output_its_text(kind, outputs, tiny_model, tmp_path):
    from realness.core.scorer import RealnessScorer
    from realness.workflows.selection import find_candidates, select_best

    root, _, texts = outputs
    scorer = RealnessScorer(tiny_model, device="cpu")
    order = [candidate.path for candidate in find_candidates(root)]  # the order a list follows
    reference = scorer([str(path) for path in order], descriptions_of(kind, order, texts, tmp_path))
    assert reference.descriptions == [texts[str(path)] for path in order]
    result = select_best(root, model=scorer, descriptions=descriptions_of(kind, order, texts, tmp_path), bootstrap=50)
    assert {str(c.path): c.description for c in result.candidates} == texts


@pytest.mark.parametrize("kind", KINDS)
def test_compare_folders_gives_each_image_its_text(kind, outputs, tiny_model, tmp_path):
    from realness.workflows.selection import compare_folders

    root, paths, texts = outputs
    result = compare_folders(root / "model-a", root / "model-b", model=tiny_model, device="cpu", bootstrap=50,
                             descriptions=descriptions_of(kind, paths, texts, tmp_path))
    assert {str(c.path): c.description for c in result.candidates} == texts


@pytest.fixture(scope="module")
def core_mapper(lite_model):
    from realness.dream import RealnessMapper

    return RealnessMapper(method="core", core_model=lite_model, device="cpu")


@pytest.mark.parametrize("kind", KINDS)
def test_the_core_map_records_each_image_its_text(kind, outputs, core_mapper, tmp_path):
    _, paths, texts = outputs
    maps = core_mapper([str(path) for path in paths], descriptions_of(kind, paths, texts, tmp_path))
    assert [m.description for m in maps] == [texts[str(path)] for path in paths]


@pytest.mark.parametrize("kind", KINDS)
def test_score_dataset_reads_descriptions_on_the_driver_like_the_scorer(kind, outputs, tmp_path):
    from realness.distributed.sources import description_texts

    _, paths, texts = outputs
    names = [str(path) for path in paths]
    found, failures = description_texts(descriptions_of(kind, paths, texts, tmp_path), names, roots=[])
    assert found == [texts[name] for name in names] and failures == []


def test_one_string_for_several_images_is_refused_by_every_entry_point(outputs, core_mapper, tiny_model):
    from realness.core.scorer import RealnessScorer
    from realness.distributed.sources import description_texts
    from realness.workflows.selection import compare_folders, select_best

    root, paths, _ = outputs
    names = [str(path) for path in paths]
    one = "slightly waxy skin"
    calls = {
        "scorer": lambda: RealnessScorer(tiny_model, device="cpu")(names, one),
        "select_best": lambda: select_best(root, model=tiny_model, device="cpu", descriptions=one),
        "compare_folders": lambda: compare_folders(root / "model-a", root / "model-b", model=tiny_model, device="cpu", descriptions=one),
        "core map": lambda: core_mapper(names, one),
        "score_dataset": lambda: description_texts(one, names, roots=[]),
    }
    for entry, call in calls.items():
        with pytest.raises(DescriptionsError, match="one string was given for"):
            call()
        assert entry


def test_every_map_method_refuses_an_unknown_precision():
    from realness.dream import RealnessMapper, list_map_methods
    from realness.errors import UsageError

    for method in list_map_methods():
        with pytest.raises(UsageError, match="precision='bogus'"):
            RealnessMapper(method=method, precision="bogus", device="cpu")


@pytest.mark.slow  # starts Ray; the reading it does is test_score_dataset_reads_descriptions_on_the_driver_like_the_scorer
def test_score_dataset_on_ray_scores_with_a_describer_object(outputs, tiny_model_dir, tmp_path):
    pytest.importorskip("ray.data")
    from realness.distributed import score_dataset
    from realness.distributed.output import ParquetOutput
    from realness.distributed.schema import score_schema

    root, paths, texts = outputs
    out = tmp_path / "scores"
    summary = score_dataset(root, model=tiny_model_dir, descriptions=descriptions_of("describer object", paths, texts, tmp_path),
                            out=out, batch_size=2, actors=1, progress=False)
    assert summary.written == 4 and summary.failed == 0
    rows = ParquetOutput(out, score_schema()).read().to_pydict()
    assert dict(zip(rows["path"], rows["description"])) == texts
