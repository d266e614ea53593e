"""The seams a new user hit on 0.2.0 (issue 36), each through the face the user meets it by.

The CLI ones go through ``realness.cli.main`` and check one line naming the item and the fix,
exit 2, and that no file is written where the next run would read it back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from realness import RealnessScorer
from realness.cli import main
from realness.io.files import expand_image_paths
from test_user_files import one_line_error, write_image

# --- Python: the scorer says what it is -----------------------------------------------------


def test_scorer_repr_names_model_device_precision_and_head(tiny_model_dir, tiny_model):
    scorer = RealnessScorer(tiny_model_dir, device="cpu", batch_size=4)
    assert repr(scorer) == (f"RealnessScorer(model={str(tiny_model_dir)!r}, device='cpu', precision='auto (fp32)', "
                            "head='mlp', batch_size=4)")
    loaded = RealnessScorer.from_pretrained(tiny_model_dir, device="cpu", precision="bf16")
    assert repr(loaded).startswith(f"RealnessScorer(model={str(tiny_model_dir)!r}, device='cpu', precision='bf16', ")
    # A model object has no name of its own: its encoders say what it is.
    built = RealnessScorer(tiny_model, device="cpu", precision="fp32")
    image, text = tiny_model.config.image_encoder.name, tiny_model.config.text_encoder.name
    assert repr(built) == (f"RealnessScorer(model='CoreModel(image={image}, text={text})', device='cpu', "
                           "precision='fp32', head='mlp', batch_size=32)")


# --- a misspelled folder is named as missing, not blamed on another input ---------------------

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("command", ["score", "describe", "filter", "map"])
def test_a_misspelled_folder_is_one_line_naming_it_before_any_work(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    typo = str(EXAMPLES / "imges")
    out = tmp_path / ("maps" if command == "map" else "out.csv")
    extra = {"describe": ["--describer", f"static:{EXAMPLES / 'descriptions.csv'}"], "map": ["--method", "core"],
             "filter": ["--model", str(tmp_path / "no-model")], "score": ["--model", str(tmp_path / "no-model")]}
    for descriptions in ([], ["--descriptions", str(EXAMPLES / "descriptions.csv")]):
        if command == "describe" and descriptions:
            continue
        code = main([command, typo, *descriptions, *extra[command], "--out", str(out)])
        assert one_line_error(capsys, code) == f"realness {command}: {typo}: no such folder or file; check the spelling"
        assert list(tmp_path.iterdir()) == []  # no table with an error row, no maps folder


# --- realness map: where the maps go ----------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    from test_dream import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def map_argv(clip: Path, *argv: str) -> list[str]:
    """``realness map`` on the tiny CLIP, each image described by a table beside the test's folders."""
    images = expand_image_paths([arg for arg in argv if not arg.startswith("--")][:1])
    table = Path(argv[0]).resolve().parent / "descriptions.csv"
    table.write_text("path,description\n" + "".join(f"{image},melted hands\n" for image in images))
    return ["map", *argv, "--method", "dream", "--descriptions", str(table), "--model", str(clip),
            "--window-sizes", "16", "--stride", "8", "--device", "cpu", "--no-progress"]


def test_map_out_inside_the_folder_it_reads_is_refused_naming_both(clip_dir, tmp_path, capsys):
    folder = tmp_path / "gen"
    images = [write_image(folder / f"img{i}.png", seed=i) for i in range(3)]
    before = {path: path.read_bytes() for path in images}
    for out in (images[0], folder / "maps"):
        code = main(map_argv(clip_dir, str(folder), "--out", str(out)))
        assert one_line_error(capsys, code) == (
            f"realness map: {out}: inside {folder}, which this command reads its images from, so the next run would "
            "read the maps back as images: give --out outside it")
    assert {path: path.read_bytes() for path in folder.iterdir()} == before


def test_map_out_that_is_a_file_for_several_images_says_it_needs_a_folder(clip_dir, tmp_path, capsys):
    folder = tmp_path / "gen"
    for i in range(2):
        write_image(folder / f"img{i}.png", seed=i)
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    code = main(map_argv(clip_dir, str(folder), "--out", str(existing)))
    assert one_line_error(capsys, code) == (
        f"realness map: {existing}: is a file; with 2 images --out is the folder for their NAME_map.png files: "
        "give a folder")
    assert existing.read_text() == "keep me"


def test_map_without_out_writes_beside_the_input_never_into_it_or_here(clip_dir, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "gen"
    for i in range(2):
        write_image(folder / f"img{i}.png", seed=i)
    single = write_image(tmp_path / "one" / "solo.png", seed=5)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(map_argv(clip_dir, str(folder))) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "gen_maps").iterdir()) == ["img0_map.png", "img1_map.png"]
    assert main(map_argv(clip_dir, str(single))) == 0, capsys.readouterr().err
    assert (tmp_path / "one" / "solo_map.png").is_file()
    assert list(here.iterdir()) == [] and sorted(p.name for p in folder.iterdir()) == ["img0.png", "img1.png"]



# --- compare and filter: no output where the next run reads its images -------------------------


def test_compare_out_dir_or_out_inside_a_folder_it_reads_is_refused(tiny_model_dir, tmp_path, capsys):
    root = tmp_path / "root"
    first = write_image(root / "original" / "cat.png", seed=1)
    write_image(root / "other" / "cat.png", seed=2)
    model = ["--model", str(tiny_model_dir), "--device", "cpu"]
    for out_dir in (root / "original", root / "report"):  # the report's summary.png would be read as an image
        code = main(["compare", str(root), "--out-dir", str(out_dir), *model])
        assert one_line_error(capsys, code) == (
            f"realness compare: {out_dir}: inside {root}, which this command reads its images from, so the next run "
            "would read the report back as images: give --out-dir outside it")
    code = main(["compare", str(root), "--out", str(first), *model])
    assert one_line_error(capsys, code) == (
        f"realness compare: {first}: inside {root}, which this command reads its images from, so the next run "
        "would read the table back as images: give --out outside it")
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == ["original", "original/cat.png", "other",
                                                                        "other/cat.png"]


def test_filter_export_into_a_sub_folder_of_its_source_is_refused(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "gen"
    for i in range(2):
        write_image(folder / f"img{i}.png", seed=i)
    code = main(["filter", str(folder), "--top-k", "1", "--export", str(folder / "kept"), "--model", str(tiny_model_dir)])
    assert one_line_error(capsys, code) == (
        f"realness filter: {folder / 'kept'}: inside {folder}, which this command reads its images from, so the next "
        "run would read the exported copies back as images: give --export outside it")
    assert sorted(p.name for p in folder.iterdir()) == ["img0.png", "img1.png"]


# --- Python: warnings point at the caller's line, and a file name as a text is said once -----------


def test_scorer_warnings_point_at_the_callers_line(tiny_model_dir, tmp_path, monkeypatch):
    import warnings

    import realness.describers.descriptions as descriptions_module
    from realness.errors import DescriptionsWarning, ImageOnlyWarning

    monkeypatch.setattr(descriptions_module, "_WARNED_IMAGE_ONLY", False)
    image = write_image(tmp_path / "a.png")
    table = tmp_path / "texts.csv"
    table.write_text("path,description\na.png,No.\nother.png,Yes.\n")
    scorer = RealnessScorer(tiny_model_dir, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorer([str(image)])  # image-only
        scorer([str(image)], descriptions=table)  # a table row that matches no image
    kinds = {warning.category for warning in caught}
    assert {ImageOnlyWarning, DescriptionsWarning} <= kinds, [str(w.message) for w in caught]
    assert {(warning.filename, warning.category) for warning in caught} == {(__file__, kind) for kind in kinds}


def test_one_string_that_is_an_existing_files_path_is_used_as_the_text_with_a_warning(tiny_model_dir, tmp_path):
    import warnings

    from realness.errors import DescriptionsWarning

    image = write_image(tmp_path / "a.png")
    table = tmp_path / "texts.csv"
    table.write_text("path,description\na.png,No.\n")
    scorer = RealnessScorer(tiny_model_dir, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scorer(str(image), descriptions=str(table))
    assert result.descriptions == [str(table)]  # one string is one text, by the 0.2.0 rule
    [warning] = [w for w in caught if w.category is DescriptionsWarning]
    assert str(warning.message) == (
        f"descriptions={str(table)!r} is used as this image's text, but it is the path of an existing file; "
        f"to read the file as a descriptions table, pass pathlib.Path({str(table)!r})")
    assert warning.filename == __file__
