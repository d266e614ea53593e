"""The seams a new user hit on 0.2.0 (issue 36), each through the face the user meets it by.

The CLI ones go through ``realness.cli.main`` and check one line naming the item and the fix,
exit 2, and that no file is written where the next run would read it back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from realness import RealnessScorer
from realness.cli import main
from test_user_files import one_line_error

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
