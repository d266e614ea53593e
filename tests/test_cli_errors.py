"""Every subcommand answers a user's mistake with one line ``realness CMD: ITEM: REASON`` and exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from realness.cli import main
from realness.describers import descriptions as descriptions_module


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "gen.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(path)
    return path


def _mistakes(tmp_path, image, model_dir):
    """(subcommand, argv, what the one line must say)."""
    pairs = tmp_path / "unpaired"
    for model, name in (("model-a", "cat_a.png"), ("model-b", "cat_b.png")):
        (pairs / model).mkdir(parents=True)
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(pairs / model / name)
    cases = [
        ("score", [str(image), "--model", str(model_dir), "--describer", "gpt"], "'gpt': unknown describer name"),
        ("score", [str(image), "--model", str(tmp_path / "no-such-model")], "no-such-model"),
        ("filter", [str(image), "--model", str(model_dir), "--top-k", "0"], "top_k must be at least 1"),
        ("compare", [str(pairs), "--model", str(model_dir)], "no output pairs with another model's"),
        ("compare", [str(tmp_path / "missing"), "--model", str(model_dir)], "missing: not a folder"),
        ("compare", [str(pairs), "--unpaired", "--model", str(model_dir)], "--unpaired: needs exactly two folders"),
        ("map", [str(image), "--description", "x", "--describer", "gpt"], "--description"),
        ("map", [str(image), "--describer", "nope:x"], "'nope:x': unknown describer name"),
        ("describe", [str(image), "--describer", "gpt"], "'gpt': unknown describer name"),
        ("train", ["--csv", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m")], "missing.csv"),
        ("train", ["--csv", str(image), "--config", "lite", "--model", str(model_dir)], "not allowed with argument"),
        ("train", ["--csv", str(tmp_path / "missing.csv"), "--image-trainable", "last", "--out", str(tmp_path / "m")],
         "--image-trainable last: a kernel_ridge head is fitted over frozen image features"),
        ("score", [str(image), str(pairs), "--description", "x"], "--description: one text for one image"),
        ("filter", [str(image), "--description", "x", "--descriptions", str(image)], "not both"),
    ]
    # A table suffix that names no format is refused before any work: the missing model is never looked at.
    no_model = ["--model", str(tmp_path / "no-such-model")]
    cases += [
        (command, [*argv, "--out", str(tmp_path / "scores.xlsx")], "scores.xlsx: unknown table format .xlsx")
        for command, argv in (
            ("score", [str(image), *no_model]),
            ("filter", [str(image), *no_model]),
            ("compare", [str(pairs), *no_model]),
            ("describe", [str(image), "--describer", "static:" + str(tmp_path / "none.csv")]),
        )
    ]
    if not torch.cuda.is_available():
        cases += [
            (command, argv, "cuda: CUDA is not available")
            for command, argv in (
                ("score", [str(image), "--model", str(model_dir), "--device", "cuda"]),
                ("filter", [str(image), "--model", str(model_dir), "--device", "cuda"]),
                ("compare", [str(pairs), "--model", str(model_dir), "--device", "cuda"]),
                ("map", [str(image), "--description", "x", "--device", "cuda"]),
                ("train", ["--csv", str(image), "--out", str(tmp_path / "m"), "--device", "cuda"]),
                ("describe", [str(image), "--describer", "vlm", "--device", "cuda"]),
            )
        ]
    return cases


def test_every_subcommand_reports_a_user_mistake_in_one_line(tmp_path, image, tiny_model_dir, capsys):
    from realness.cli import SUBCOMMANDS

    cases = _mistakes(tmp_path, image, tiny_model_dir)
    assert {command for command, _, _ in cases} == set(SUBCOMMANDS)
    for command, argv, expected in cases:
        status = main([command, *argv])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 2, (command, argv, err)
        assert "Traceback" not in err and ".py" not in err, (command, argv, err)
        assert lines[-1].startswith(f"realness {command}: ") and expected in lines[-1], (command, argv, err)


def test_debug_shows_the_traceback(tmp_path, image, tiny_model_dir):
    with pytest.raises(Exception, match="unknown describer name"):
        main(["score", str(image), "--model", str(tiny_model_dir), "--describer", "gpt", "--debug"])


def test_warnings_print_as_one_line_without_a_source_path(image, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setattr(descriptions_module, "_WARNED_IMAGE_ONLY", False)
    assert main(["score", str(image), "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "warning" in line]
    assert line.startswith("realness score: warning: 1 of 1 images scored without a description (image-only")
    assert ".py" not in err


def test_quiet_hides_warnings(image, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setattr(descriptions_module, "_WARNED_IMAGE_ONLY", False)
    assert main(["score", str(image), "--model", str(tiny_model_dir), "--device", "cpu", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_shared_flags_table_in_the_docs_matches_the_parsers():
    import re

    from conftest import REPO_ROOT
    from realness.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    text = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text[text.index("## Shared flags"):].split("\n\n")[2].splitlines()
    commands = [cell.strip() for cell in table[0].strip("|").split("|")[2:]]
    assert set(commands) == set(subparsers)
    checked = 0
    for row in table[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        flag = cells[0].strip("`").split()[0]
        for command, mark in zip(commands, cells[2:]):
            accepted = flag == "--debug" or flag in subparsers[command]._option_string_actions
            assert accepted == (mark == "✓"), (flag, command, mark)
            checked += 1
    assert checked >= 50
