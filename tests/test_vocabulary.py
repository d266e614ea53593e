"""One vocabulary at every entry point: the same call forms mean the same thing everywhere.

Each entry point (``RealnessScorer``, ``realness.score``, ``Realness``, ``filter_images``,
``RealnessMapper``, ``realness_map``) is wrapped in an adapter that returns one value per
image (a score, or a map), so one table of call forms can be asserted against all of them.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import realness
from realness.core import RealnessScorer, score
from realness.describers import StaticDescriber
from realness.describers import descriptions as descriptions_module
from realness.dream import RealnessMapper, realness_map
from realness.errors import DescriptionsError, DeviceError, ImageOnlyWarning, UnknownNameError, UsageError
from realness.io.inputs import split_batch
from test_dream import save_tiny_clip, smooth_image

TEXTS = ["No.", "Yes. The hand has six fingers."]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("vocabulary-clip"))


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for index in range(2):
        array = (smooth_image(40, 40, seed=index).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        path = tmp_path / f"img{index}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def describer_csv(tmp_path, image_files):
    table = tmp_path / "texts.csv"
    table.write_text("filename,description\n" + "".join(f"img{i}.png,{text}\n" for i, text in enumerate(TEXTS)))
    return table


def _scores(result):
    scores = result if isinstance(result, torch.Tensor) else getattr(result, "scores", result)
    return [float(value) for value in torch.as_tensor(scores).reshape(-1)]


def _maps(result):
    if hasattr(result, "maps"):
        return [m.map for m in result.maps]
    return [result.map]


@pytest.fixture
def entry_points(tiny_model, tiny_model_dir, clip_dir):
    """name -> call(images, descriptions, **options) -> one value per image."""
    mapper_options = {"window_sizes": (16,), "stride": 8, "device": "cpu"}

    def scorer(images, descriptions=None, **options):
        init = {k: options.pop(k) for k in ("precision", "device", "batch_size") if k in options}
        return _scores(RealnessScorer(tiny_model, **{"device": "cpu", **init})(images, descriptions, **options))

    def functional(images, descriptions=None, **options):
        return _scores(score(images, descriptions, model=str(tiny_model_dir), **{"device": "cpu", **options}))

    def metric(images, descriptions=None, **options):
        from realness.metrics import Realness

        init = {k: options.pop(k) for k in ("precision", "on_error") if k in options}
        if "device" in options:
            from realness.runtime.device import resolve_device

            resolve_device(options.pop("device"))  # the metric follows .to(device), checked the same way
        scorer = RealnessScorer(tiny_model, device="cpu", precision=init.pop("precision", "auto"))
        metric = Realness(scorer, keep_scores=True, **init)
        metric.update(images, descriptions)
        return _scores(metric.compute()["scores"])

    def mapper(images, descriptions=None, **options):
        init = {k: options.pop(k) for k in ("precision", "device", "batch_size") if k in options}
        return _maps(RealnessMapper(clip_dir, **{**mapper_options, **init})(images, descriptions, **options))

    def functional_map(images, descriptions=None, **options):
        return _maps(realness_map(images, descriptions, model=str(clip_dir), **{**mapper_options, **options}))

    def filtered(images, descriptions=None, **options):
        from realness.workflows.filtering import filter_images

        result = filter_images(images, descriptions=descriptions, model=tiny_model, **{"device": "cpu", **options})
        by_path = {str(image.path): image.score for image in result.images}
        return [by_path[str(path)] for path in ([images] if isinstance(images, str) else images)]

    return {
        "scorer": scorer, "score": functional, "metric": metric, "filter_images": filtered,
        "mapper": mapper, "realness_map": functional_map,
    }


SCORING = ("scorer", "score", "metric", "filter_images")
MAPPING = ("mapper", "realness_map")
ALL = SCORING + MAPPING


def _same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


@pytest.mark.parametrize("entry", ALL)
def test_one_string_for_one_image_equals_a_list_of_one(entry, entry_points, image_files):
    call = entry_points[entry]
    _same(call(image_files[0], TEXTS[1]), call([image_files[0]], [TEXTS[1]]))


@pytest.mark.parametrize("entry", ALL)
def test_one_string_for_several_images_is_refused(entry, entry_points, image_files):
    with pytest.raises(DescriptionsError, match="one string was given for 2 images"):
        entry_points[entry](image_files, TEXTS[0])


@pytest.mark.parametrize("entry", ALL)
def test_a_list_of_the_wrong_length_is_refused(entry, entry_points, image_files):
    with pytest.raises(DescriptionsError, match="1 descriptions were given for 2 images"):
        entry_points[entry](image_files, TEXTS[:1])


@pytest.mark.parametrize("entry", ALL)
def test_a_describer_object_or_name_fills_the_descriptions(entry, entry_points, image_files, describer_csv):
    call = entry_points[entry]
    expected = call(image_files, TEXTS)
    _same(call(image_files, StaticDescriber.from_csv(describer_csv)), expected)
    _same(call(image_files, f"static:{describer_csv}"), expected)


@pytest.mark.parametrize("entry", ALL)
def test_precision_and_device_mean_the_same_everywhere(entry, entry_points, image_files):
    call = entry_points[entry]
    _same(call(image_files, TEXTS, precision="fp32"), call(image_files, TEXTS))
    with pytest.raises(UsageError, match="precision='int8'"):
        call(image_files, TEXTS, precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            call(image_files, TEXTS, device="cuda")


@pytest.mark.parametrize("entry", ALL)
def test_on_error_is_checked_everywhere(entry, entry_points, image_files):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        entry_points[entry](image_files, TEXTS, on_error="ignore")


@pytest.mark.parametrize("entry", SCORING)
def test_without_descriptions_scoring_is_image_only_with_one_warning(entry, entry_points, image_files, monkeypatch):
    monkeypatch.setattr(descriptions_module, "_WARNED_IMAGE_ONLY", False)
    with pytest.warns(ImageOnlyWarning) as caught:
        scores = entry_points[entry](image_files)
    assert len([w for w in caught if issubclass(w.category, ImageOnlyWarning)]) == 1
    assert "\n" not in str(caught[0].message) and all(np.isfinite(scores))


@pytest.mark.parametrize("entry", MAPPING)
def test_without_descriptions_mapping_names_the_image(entry, entry_points, image_files):
    with pytest.raises(DescriptionsError, match="img0.png: no description, and DREAM needs one"):
        entry_points[entry](image_files)


def test_a_batch_tensor_inside_a_list_stands_for_its_images(tiny_model):
    batch = torch.rand(3, 3, 32, 32)
    items, single = split_batch([torch.rand(3, 32, 32), batch, np.zeros((32, 32, 3), np.uint8)])
    assert len(items) == 5 and not single
    scorer = RealnessScorer(tiny_model, device="cpu")
    mixed = scorer([batch[0], batch, batch[2]], ["No."] * 5).scores
    torch.testing.assert_close(mixed[1:4], scorer(batch, ["No."] * 3).scores, atol=1e-5, rtol=0)


# --- old spellings ---------------------------------------------------------------------------


def test_the_spellings_removed_in_0_2_are_refused(tiny_model, clip_dir, image_files):
    with pytest.raises(TypeError, match="description"):
        score(image_files[0], description=TEXTS[1], model=tiny_model, device="cpu")
    with pytest.raises(TypeError, match="dtype"):
        RealnessScorer(tiny_model, device="cpu", dtype=torch.float32)
    with pytest.raises(TypeError, match="chunk_size"):
        RealnessMapper(clip_dir, window_sizes=(16,), stride=8, device="cpu", chunk_size=5)


def test_the_new_spellings_give_no_deprecation_warning(tiny_model, clip_dir, image_files):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        RealnessScorer(tiny_model, device="cpu", precision="fp32", batch_size=2, progress=False)(image_files, TEXTS)
        RealnessMapper(clip_dir, window_sizes=(16,), stride=8, device="cpu", batch_size=4, progress=False)(image_files, TEXTS)


# --- names ---------------------------------------------------------------------------------------


def test_registries_list_what_they_accept():
    assert realness.list_models() == ["realness-core-lite"]
    assert realness.list_describers()[:3] == ["openai", "openai:MODEL", "openai:MODEL@URL"]
    assert {"vlm:ORG/REPO", "static:FILE.csv"} <= set(realness.list_describers())
    # A bare name is a bundled model or a typo; it is never sent to the Hub as a repository.
    with pytest.raises(UnknownNameError, match="'realness-core-big': not a bundled model .realness-core-lite."):
        RealnessScorer("realness-core-big", device="cpu")
    assert realness.list_embedders() == ["open_clip:ARCH", "open_clip:ARCH:TAG", "hf-hub:ORG/REPO[@REVISION]"]


def test_models_embedders_and_describers_share_one_registry_grammar():
    from realness.core.pretrained import CORE_MODELS
    from realness.describers.factory import DESCRIBERS
    from realness.dream.embedders import EMBEDDERS
    from realness.registry import Registry

    assert all(isinstance(registry, Registry) for registry in (CORE_MODELS, EMBEDDERS, DESCRIBERS))
    # The same grammar everywhere: KIND or KIND:ARGUMENT, and an unknown kind names the accepted forms.
    for registry, typo in ((CORE_MODELS, "hf-hubb:org/repo"), (EMBEDDERS, "openclip:ViT-B-32"), (DESCRIBERS, "opneai:gpt-4.1")):
        assert not registry.accepts(typo)
        with pytest.raises(UnknownNameError, match=f"unknown {registry.family} name; use {re.escape(registry.forms()[0])}"):
            registry.parse(typo)
    assert CORE_MODELS.accepts("hf-hub:org/repo@v1") and EMBEDDERS.accepts("hf-hub:openai/clip-vit-base-patch32")
    # A description text is never taken for a name (names hold no spaces).
    assert not any(registry.accepts("open_clip: the hands melt") for registry in (CORE_MODELS, EMBEDDERS, DESCRIBERS))


def test_a_describer_name_works_where_a_describer_is_taken(tiny_model, monkeypatch, describer_csv, image_files):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # never used: nothing is described
    pytest.importorskip("openai")
    scorer = RealnessScorer(tiny_model, device="cpu", describer="openai")
    assert scorer.describer.model == "gpt-4.1"
    from_table = RealnessScorer(tiny_model, device="cpu", describer=f"static:{describer_csv}")
    _same(_scores(from_table(image_files)), _scores(from_table(image_files, TEXTS)))
    with pytest.raises(UnknownNameError, match="unknown describer name; use openai"):
        RealnessScorer(tiny_model, device="cpu", describer="gpt")


def test_a_description_text_is_never_taken_for_a_describer_name():
    from realness.describers.factory import is_describer_name

    assert is_describer_name("openai:gpt-4.1") and is_describer_name("vlm:org/repo") and is_describer_name("openai")
    assert not is_describer_name("No.") and not is_describer_name("static: the sky is odd")
    assert not is_describer_name("Yes. The openai logo is warped.")


# (That the docs teach only the new spellings is checked with their snippets: test_snippets.py.)


def test_the_workflows_take_the_same_words(tiny_model, image_files, describer_csv, tmp_path):
    from realness.workflows.filtering import filter_images
    from realness.workflows.selection import compare_folders

    folder = str(tmp_path)
    by_table = filter_images(folder, model=tiny_model, descriptions=describer_csv, device="cpu")
    by_table = {i.path.name: i.score for i in by_table.images}
    by_name = filter_images(folder, model=tiny_model, descriptions=f"static:{describer_csv}", device="cpu", precision="fp32")
    assert {i.path.name: i.score for i in by_name.images} == pytest.approx(by_table)
    assert [i.description for i in sorted(by_name.images, key=lambda i: i.path.name)] == TEXTS
    with pytest.raises(UsageError, match="precision='int8'"):
        filter_images(folder, model=tiny_model, precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            filter_images(folder, model=tiny_model, device="cuda")
        with pytest.raises(DeviceError):
            compare_folders(folder, folder, model=tiny_model, device="cuda")


def test_the_regression_check_takes_the_same_words(tiny_model, image_files, describer_csv, tmp_path):
    from realness.workflows.regression import assert_realness_not_dropped

    baseline = tmp_path / "baseline.json"
    written = assert_realness_not_dropped(
        image_files, baseline, descriptions=TEXTS, model=tiny_model, device="cpu", precision="fp32", batch_size=1,
        update=True,
    )
    # A describer name fills the same texts, so the check against that baseline passes exactly.
    checked = assert_realness_not_dropped(
        image_files, baseline, descriptions=f"static:{describer_csv}", model=tiny_model, device="cpu", batch_size=1,
        tolerance=0.0,
    )  # batch_size=1 in both: texts of different lengths padded into one batch change the last float bits
    assert checked.current_mean == pytest.approx(written.current_mean, abs=1e-6)
    with pytest.raises(UsageError, match="precision='int8'"):
        assert_realness_not_dropped(image_files, baseline, model=tiny_model, precision="int8")


def test_descriptions_may_be_any_iterable_and_nan_means_missing():
    from realness.describers.descriptions import align_descriptions

    assert align_descriptions(np.array(["a", "b"]), 2) == ["a", "b"]
    assert align_descriptions(("a", float("nan")), 2) == ["a", None]
    with pytest.raises(DescriptionsError, match=r"descriptions\[1\]: a int, not a string"):
        align_descriptions(["a", 3], 2)
    with pytest.raises(DescriptionsError, match="neither a string"):
        align_descriptions(3, 1)
