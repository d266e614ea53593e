"""Workflows on a tiny random CORE model: folder filtering, cross-model selection, regression checks."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from realness.core import CoreModel, RealnessScorer
from realness.workflows.filtering import filter_images
from realness.workflows.regression import RealnessBaseline, assert_realness_not_dropped, sample_keys
from realness.workflows.selection import Candidate, find_candidates, select_best, select_best_from_scores

pytest_plugins = ["pytester"]


def _write_images(folder, count, seed=0, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        # Smooth gradients with different noise levels give the random head a spread of scores.
        base = np.linspace(0, 255, size)[None, :, None] * np.ones((size, 1, 3))
        noise = rng.normal(0, 20 * index, size=(size, size, 3))
        array = np.clip(base + noise, 0, 255).astype(np.uint8)
        path = folder / f"img{index}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def run_cli(name, argv):
    """Run one subcommand through its own parser (it works whether or not the registry lists it)."""
    parser = argparse.ArgumentParser(prog="realness")
    importlib.import_module(f"realness.cli.{name}").register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([name, *argv])
    return args.run(args)


# --- filtering ---------------------------------------------------------------------------------


def test_filter_ranks_keeps_by_threshold_and_top_k(tiny_model, tmp_path):
    paths = _write_images(tmp_path / "gen", 6)
    (tmp_path / "gen" / "broken.png").write_bytes(b"not an image")
    expected = RealnessScorer(tiny_model, device="cpu")([str(p) for p in paths]).scores.tolist()
    threshold = sorted(expected)[2]  # exactly four images score at least this
    scorer = RealnessScorer(tiny_model, device="cpu")

    result = filter_images(tmp_path / "gen", min_score=threshold, model=scorer)
    scores = [image.score for image in result.images if image.rank is not None]
    assert scores == sorted(scores, reverse=True)
    assert sorted(scores) == pytest.approx(sorted(expected), abs=1e-5)
    assert len(result.kept) == 4 and all(image.score >= threshold for image in result.kept)
    assert result.images[-1].path.name == "broken.png" and result.images[-1].rank is None
    assert not result.images[-1].kept and "broken.png" in result.skipped[0].item

    top = filter_images(tmp_path / "gen", min_score=threshold, top_k=2, model=scorer)
    assert [image.path for image in top.kept] == [image.path for image in result.kept[:2]]
    with pytest.raises(ValueError, match="top_k"):
        filter_images(tmp_path / "gen", top_k=0, model=scorer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        filter_images(tmp_path / "empty", model=scorer)
    missing = filter_images(tmp_path / "missing.png", model=scorer)
    assert not missing.kept and "missing.png" in missing.skipped[0].item


def test_filter_exports_copies_and_links_keeping_relative_paths(tiny_model, tmp_path):
    _write_images(tmp_path / "gen" / "a", 2, seed=1)
    _write_images(tmp_path / "gen" / "b", 2, seed=2)
    result = filter_images(tmp_path / "gen", top_k=3, model=RealnessScorer(tiny_model, device="cpu"))
    copies = result.export(tmp_path / "copied")
    assert len(copies) == 3 and all(p.is_file() and not p.is_symlink() for p in copies)
    assert {p.relative_to(tmp_path / "copied").parts[0] for p in copies} <= {"a", "b"}
    links = result.export(tmp_path / "linked", mode="symlink")
    assert all(p.is_symlink() and p.resolve() == k.path.resolve() for p, k in zip(links, result.kept))
    assert result.export(tmp_path / "linked", mode="hardlink") == []  # the links already lead to the images
    assert result.export(tmp_path / "hard", mode="hardlink")[0].stat().st_nlink >= 2
    with pytest.raises(ValueError, match="mode"):
        result.export(tmp_path / "x", mode="move")


def test_filter_cli_writes_csv_and_exports(tiny_model_dir, tmp_path, capsys):
    paths = _write_images(tmp_path / "gen", 5)
    descriptions = tmp_path / "descriptions.csv"
    descriptions.write_text("filename,description\nimg0.png,Yes. The hand has six fingers.\n")
    code = run_cli(
        "filter",
        [str(tmp_path / "gen"), "--top-k", "2", "--out", str(tmp_path / "kept.csv"), "--export", str(tmp_path / "kept"),
         "--mode", "symlink", "--model", str(tiny_model_dir), "--descriptions", str(descriptions), "--device", "cpu"],
    )
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "kept.csv")))
    assert [row["rank"] for row in rows] == ["1", "2"] and all(row["kept"] == "True" for row in rows)
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(os_name(row["path"]) for row in rows)
    assert "kept 2 of 5 scored images" in capsys.readouterr().err

    assert run_cli("filter", [str(tmp_path / "gen"), "--all", "--model", str(tiny_model_dir), "--descriptions", str(descriptions)]) == 0
    printed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(printed) == len(paths) and all(row["kept"] == "True" for row in printed)
    described = [row for row in printed if row["path"].endswith("img0.png")][0]
    assert described["verdict"] == "yes"


def os_name(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1]


# --- cross-model selection ---------------------------------------------------------------------


def test_select_best_from_scores_picks_winners_and_win_rates():
    def c(model, prompt, score):
        return Candidate(model=model, prompt_id=prompt, path=f"{model}/{prompt}.png", score=score)  # type: ignore[arg-type]

    result = select_best_from_scores(
        [c("a", "p1", 1.0), c("b", "p1", 0.5), c("a", "p2", -1.0), c("b", "p2", 0.0), c("a", "p3", 2.0), c("b", "p3", math.nan), c("a", "p4", 0.0)]
    )
    # Wins count only where every model has a scored output (p1, p2): a win against no one is no win.
    assert {p: w.model for p, w in result.winners.items()} == {"p1": "a", "p2": "b"}
    by_model = {s.model: s for s in result.summaries}
    assert by_model["a"].wins == 1 and by_model["a"].n == 4 and by_model["a"].win_rate == pytest.approx(0.5)
    assert by_model["a"].mean == pytest.approx(0.5) and by_model["a"].std == pytest.approx(np.std([1, -1, 2, 0], ddof=1))
    assert by_model["a"].ci_low <= 0.5 <= by_model["a"].ci_high
    assert by_model["b"].n == 2 and by_model["b"].skipped == 1 and by_model["b"].win_rate == pytest.approx(0.5)
    assert result.summaries[0].model == "a" and result.incomplete_prompts == ["p3", "p4"]
    rows = {row["prompt_id"]: row for row in result.winner_rows()}
    assert rows["p1"]["margin"] == pytest.approx(0.5) and rows["p2"]["score:a"] == -1.0
    [comparison] = result.comparisons
    assert (comparison.first, comparison.second, comparison.pairs) == ("a", "b", 2)
    assert comparison.mean_difference == pytest.approx(((1.0 - 0.5) + (-1.0 - 0.0)) / 2)
    assert "no significant difference" in comparison.verdict and "too few" in comparison.verdict
    assert "| a | 4 | 0.500 [" in result.summary_markdown()


def test_select_best_reads_layout_and_descriptions(tiny_model, tmp_path):
    root = tmp_path / "outputs"
    for model, seed in (("model-a", 0), ("model-b", 1), ("model-c", 2)):
        _write_images(root / model, 3, seed=seed)
    (root / "descriptions.csv").write_text("model,prompt_id,description\nmodel-a,img0,Yes. Six fingers.\n")
    (root / "model-b" / "descriptions.csv").write_text("prompt_id,description\nimg1,No.\n")
    candidates = {(c.model, c.prompt_id): c for c in find_candidates(root)}
    assert len(candidates) == 9
    assert candidates["model-a", "img0"].description == "Yes. Six fingers."
    assert candidates["model-b", "img1"].description == "No." and candidates["model-c", "img0"].description is None

    scorer = RealnessScorer(tiny_model, device="cpu")
    result = select_best(root, model=scorer)
    direct = scorer([str(c.path) for c in candidates.values()], [c.description for c in candidates.values()]).scores
    for (key, _candidate), expected in zip(candidates.items(), direct.tolist()):
        scored = next(c for c in result.candidates if (c.model, c.prompt_id) == key)
        assert scored.score == pytest.approx(expected, abs=1e-5)
    for prompt, winner in result.winners.items():
        assert winner.score == max(c.score for c in result.candidates if c.prompt_id == prompt)
    assert sum(s.wins for s in result.summaries) == 3

    (root / "model-c" / "img0.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="two images have the key 'img0'"):
        find_candidates(root)


def test_compare_cli_writes_tables_and_chart(tiny_model_dir, tmp_path, capsys):
    root = tmp_path / "outputs"
    for model, seed in (("model-a", 0), ("model-b", 1)):
        _write_images(root / model, 3, seed=seed)
    (root / "model-b" / "img2.png").unlink()
    out = tmp_path / "report"
    assert run_cli("compare", [str(root), "--out-dir", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("| generator | n | mean score [95% CI] |")
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert {row["generator"]: row["n"] for row in summary} == {"model-a": "3", "model-b": "2"}
    winners = list(csv.DictReader(open(out / "winners.csv")))
    # img2 has no partner: listed with its score, but nobody wins it.
    assert [row["prompt_id"] for row in winners] == ["img0", "img1", "img2"] and winners[2]["winner"] == ""
    assert list(csv.DictReader(open(out / "comparisons.csv")))[0]["pairs"] == "2"
    assert (out / "summary.md").read_text().startswith("| generator |")
    assert Image.open(out / "summary.png").size[0] > 100
    with pytest.raises(FileNotFoundError):
        run_cli("compare", [str(tmp_path / "missing"), "--model", str(tiny_model_dir)])


# --- regression --------------------------------------------------------------------------------


def test_regression_baseline_round_trip_and_drop_report(tiny_model, tmp_path):
    paths = _write_images(tmp_path / "samples", 4)
    baseline = tmp_path / "baseline.json"
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.raises(AssertionError, match="no realness baseline"):
        assert_realness_not_dropped(paths, baseline, model=scorer)
    assert_realness_not_dropped(paths, baseline, model=scorer, update=True)
    stored = json.loads(baseline.read_text())
    assert set(stored["scores"]) == {"img0.png", "img1.png", "img2.png", "img3.png"}
    assert stored["mean"] == pytest.approx(np.mean(list(stored["scores"].values())))
    assert stored["realness_version"] and len(stored["model_fingerprint"]) == 64
    assert assert_realness_not_dropped(paths, baseline, model=scorer).passed

    # Pretend the baseline was better than today by more than the tolerance on one image.
    saved = RealnessBaseline.load(baseline)
    saved.scores["img2.png"] += 4.0
    saved.mean += 1.0
    saved.save(baseline)
    with pytest.raises(AssertionError) as failure:
        assert_realness_not_dropped(paths, baseline, model=scorer, tolerance=0.5)
    message = str(failure.value)
    assert message.startswith("realness dropped") and "tolerance 0.5" in message
    assert message.splitlines()[3].strip().startswith("img2.png")  # the biggest drop is listed first
    assert assert_realness_not_dropped(paths, baseline, model=scorer, tolerance=1.5).passed


def test_regression_refuses_other_model_or_other_samples(tiny_model, tiny_core_config, tmp_path):
    paths = _write_images(tmp_path / "samples", 3)
    baseline = tmp_path / "baseline.json"
    assert_realness_not_dropped(paths, baseline, model=RealnessScorer(tiny_model, device="cpu"), update=True)
    torch.manual_seed(99)
    other = CoreModel(tiny_core_config, encoders_from=tiny_model)
    with pytest.raises(AssertionError, match="not comparable"):
        assert_realness_not_dropped(paths, baseline, model=RealnessScorer(other, device="cpu"))
    with pytest.raises(AssertionError, match="1 samples of the baseline are gone: img2.png"):
        assert_realness_not_dropped(paths[:2], baseline, model=RealnessScorer(tiny_model, device="cpu"))
    tensors = {"first": torch.rand(3, 40, 40), "second": torch.rand(3, 40, 40)}
    assert_realness_not_dropped(tensors, tmp_path / "t.json", model=tiny_model, update=True)
    assert set(json.loads((tmp_path / "t.json").read_text())["scores"]) == {"first", "second"}
    assert sample_keys([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", torch.zeros(1)]) == ["a/x.png", "b/x.png", "item 2"]


def test_pytest_plugin_fixture_and_update_option(pytester, tiny_model_dir, tmp_path):
    _write_images(tmp_path / "samples", 3)
    pytester.makeini(f"[pytest]\nrealness_model = {tiny_model_dir}\n")
    pytester.makepyfile(
        test_gen=f"""
        from pathlib import Path

        def test_samples(realness_baseline):
            paths = sorted(Path({str(tmp_path / 'samples')!r}).glob('*.png'))
            result = realness_baseline(paths, device="cpu")
            assert result.current_mean == result.current_mean
        """
    )
    plugin = [] if _plugin_installed() else ["-p", "realness.pytest_plugin"]
    first = pytester.runpytest(*plugin)
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*no realness baseline at*realness_baselines*test_gen*test_samples.json*"])
    # The failure shows the user's test and the message, not realness's own source.
    assert "raise AssertionError" not in first.stdout.str() and "def __call__" not in first.stdout.str()
    pytester.runpytest(*plugin, "--realness-update-baseline").assert_outcomes(passed=1)
    stored = pytester.path / "realness_baselines" / "test_gen" / "test_samples.json"
    assert json.loads(stored.read_text())["model"] == str(tiny_model_dir)
    pytester.runpytest(*plugin).assert_outcomes(passed=1)


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "realness.pytest_plugin" for ep in entry_points(group="pytest11"))


def _scored(model, prompt, score):
    return Candidate(model=model, prompt_id=prompt, path=f"{model}/{prompt}.png", score=score)  # type: ignore[arg-type]


def test_a_clear_paired_difference_is_significant_and_a_noisy_one_is_not():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20)
    clear = select_best_from_scores([_scored("a", f"p{i}", b + 0.5) for i, b in enumerate(base)]
                      + [_scored("b", f"p{i}", b) for i, b in enumerate(base)])
    [comparison] = clear.comparisons
    assert comparison.p_value < 0.001 and comparison.first_win_rate == 1.0
    assert comparison.ci_low == pytest.approx(0.5) and comparison.ci_high == pytest.approx(0.5)
    assert comparison.verdict.startswith("a looks more real than b (Wilcoxon p = < 0.001, 20 pairs)")
    noise = rng.normal(0, 1, 20)
    noisy = select_best_from_scores([_scored("a", f"p{i}", b + n) for i, (b, n) in enumerate(zip(base, noise))]
                      + [_scored("b", f"p{i}", b) for i, b in enumerate(base)])
    [comparison] = noisy.comparisons
    assert comparison.p_value >= 0.05 and comparison.verdict.startswith("no significant difference between a and b")
    assert comparison.ci_low < 0 < comparison.ci_high
    assert "- no significant difference between a and b" in noisy.summary_markdown()


def test_three_models_get_holm_adjusted_pairwise_tests():
    from realness.evaluation import stats

    rng = np.random.default_rng(1)
    scores = {m: rng.normal(shift, 1, 12) for m, shift in (("a", 0.0), ("b", 0.3), ("c", 1.5))}
    result = select_best_from_scores([_scored(m, f"p{i}", s) for m, values in scores.items() for i, s in enumerate(values)])
    ranked = [s.model for s in result.summaries]  # the pairs read in the summary's order, best mean first
    assert [(c.first, c.second) for c in result.comparisons] == [(ranked[0], ranked[1]), (ranked[0], ranked[2]), (ranked[1], ranked[2])]
    raw = [stats.wilcoxon_p(scores[c.first], scores[c.second]) for c in result.comparisons]
    assert [c.p_value for c in result.comparisons] == pytest.approx(stats.holm(raw))
    assert "Holm-adjusted" in result.summary_markdown()
    assert sum(s.wins for s in result.summaries) == 12


def test_pairing_by_a_key_pattern_and_refusing_when_nothing_pairs(tiny_model, tmp_path):
    from realness.errors import NothingPairedError, UnpairedItemsWarning

    for model, suffix, seed in (("model-a", "a", 0), ("model-b", "b", 1)):
        folder = tmp_path / model
        for index, path in enumerate(_write_images(folder, 3, seed=seed)):
            path.rename(folder / f"prompt{index}_{suffix}.png")
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.raises(NothingPairedError, match="no output pairs with another model's"):
        select_best(tmp_path, model=scorer)
    result = select_best([tmp_path / "model-a", tmp_path / "model-b"], key_pattern=r"(.*)_[ab]$", model=scorer)
    assert sorted(result.winners) == ["prompt0", "prompt1", "prompt2"] and result.comparisons[0].pairs == 3
    (tmp_path / "model-b" / "prompt2_b.png").unlink()
    with pytest.warns(UnpairedItemsWarning, match="1 of 3 prompts lack an output from some model"):
        partial = select_best(tmp_path, key_pattern=r"(.*)_[ab]$", model=scorer)
    assert partial.comparisons[0].pairs == 2 and sorted(partial.winners) == ["prompt0", "prompt1"]
    with pytest.raises(NothingPairedError, match="a comparison needs at least two"):
        select_best([tmp_path / "model-a"], model=scorer)
    with pytest.raises(ValueError, match=r"--key-pattern 'zzz': matches none of the 5 file names \(e.g. prompt0_a.png\)"):
        find_candidates(tmp_path, key_pattern="zzz")


def test_unpaired_folders_compare_as_distributions(tiny_model, tmp_path):
    from realness.workflows.selection import compare_folders

    _write_images(tmp_path / "real", 4, seed=0)
    _write_images(tmp_path / "fake", 5, seed=3)
    scorer = RealnessScorer(tiny_model, device="cpu")
    result = compare_folders(tmp_path / "real", tmp_path / "fake", model=scorer, bootstrap=500)
    assert (result.first.model, result.first.n, result.second.model, result.second.n) == ("real", 4, "fake", 5)
    assert result.mean_difference == pytest.approx(result.first.mean - result.second.mean)
    assert result.ci_low <= result.mean_difference <= result.ci_high
    assert 0.0 <= result.p_value <= 1.0 and "Mann-Whitney" in result.summary_markdown()
    assert result.first.ci_low <= result.first.mean <= result.first.ci_high


