"""Describers without a model: prompt versioning, Description, StaticDescriber, the cache, the CLI."""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from realness.describers import (
    DEFAULT_PROMPT,
    CachedDescriber,
    Describer,
    Description,
    DescriptionCache,
    Prompt,
    StaticDescriber,
    build_describer,
    default_cache_path,
    summarize_descriptions,
)
from realness.errors import DescriberError, InvalidImageError, RealnessError

PAPER_PROMPT = (
    "Is there anything unrealistic in this image — yes, no, or somewhat? If yes or somewhat, explain in at "
    "most 30 words what looks unrealistic, such as a distorted face, uneven object transitions, or any other "
    "feature."
)


def save_images(directory: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"img{index}.png"
        Image.fromarray(rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class CountingDescriber(StaticDescriber):
    """A static describer that counts the images it is asked about (to observe the cache)."""

    def __init__(self, texts, **kwargs):
        super().__init__(texts, **kwargs)
        self.asked: list[str] = []

    def describe_tensors(self, images, names):
        self.asked.extend(names)
        return super().describe_tensors(images, names)


def test_default_prompt_is_the_papers_verbatim_and_ids_follow_the_text():
    assert DEFAULT_PROMPT.text == PAPER_PROMPT
    assert DEFAULT_PROMPT.id.startswith("realm-")
    assert Prompt("realm", PAPER_PROMPT).id == DEFAULT_PROMPT.id
    assert Prompt("realm", PAPER_PROMPT + " ").id != DEFAULT_PROMPT.id


def test_descriptions_parse_verdicts_and_summaries_count():
    yes = Description.success("a.png", "Yes, the hand has six fingers.", "m", "p", prompt_tokens=10, completion_tokens=5)
    odd = Description.success("b.png", "The sky is fine.", "m", "p")
    failed = Description.failure("c.png", "empty reply", "m", "p")
    assert (yes.verdict, odd.verdict, failed.verdict) == ("yes", None, None)
    assert yes.ok and odd.ok and not failed.ok and failed.text is None
    hit = yes.as_cached()
    assert hit.cached and hit.prompt_tokens == 0 and hit.text == yes.text
    summary = summarize_descriptions([yes, odd, failed, hit])
    assert (summary.described, summary.cached, summary.failed, summary.total_tokens) == (3, 1, 1, 15)
    assert "failed 1" in str(summary)


def test_static_describer_matches_paths_by_name_and_reports_unknown_ones(tmp_path):
    paths = save_images(tmp_path / "images", 3)
    table = tmp_path / "image_descriptions.csv"
    table.write_text(
        "filename,MOS,description\n"
        'img0.png,0.5,"Somewhat. The hat, oddly large, floats."\n'
        "img1.png,-1.2,No.\n"
    )
    describer = StaticDescriber.from_csv(table)
    assert isinstance(describer, Describer)
    assert describer.model == "static:image_descriptions.csv"
    first, second, third = describer.describe([str(p) for p in paths], on_error="skip")
    assert first.text == "Somewhat. The hat, oddly large, floats." and first.verdict == "somewhat"
    assert second.verdict == "no"
    assert not third.ok and third.item == str(paths[2]) and "no description" in third.error
    with pytest.raises(DescriberError, match="img2.png: no description"):
        describer.describe([str(p) for p in paths])
    (tmp_path / "aliases.csv").write_text("Name,Caption\nimg1.png,No.\n")  # spreadsheet-style headers
    assert StaticDescriber.from_csv(tmp_path / "aliases.csv").describe(str(paths[1]))[0].text == "No."
    with pytest.raises(RealnessError, match=r"no image column .*found: picture, comment"):
        (tmp_path / "bad.csv").write_text("picture,comment\n")
        StaticDescriber.from_csv(tmp_path / "bad.csv")


def test_bad_images_are_failed_items_under_skip_and_raise_otherwise(tmp_path):
    [good] = save_images(tmp_path, 1)
    missing = tmp_path / "missing.png"
    describer = StaticDescriber({"img0.png": "No."})
    descriptions = describer.describe([str(missing), str(good)], on_error="skip")
    assert [d.ok for d in descriptions] == [False, True]
    assert descriptions[0].item == str(missing) and descriptions[0].error
    with pytest.raises(InvalidImageError, match="missing.png"):
        describer.describe([str(missing), str(good)])


def test_cache_serves_repeats_and_keys_on_pixels_model_and_prompt(tmp_path):
    paths = save_images(tmp_path / "images", 3)
    pixels = np.asarray(Image.open(paths[0]))
    inner = CountingDescriber({p.name: f"Yes, {p.name} looks odd." for p in paths})
    cache_file = tmp_path / "cache.sqlite3"
    cached = CachedDescriber(inner, cache_file)
    first = cached.describe([str(p) for p in paths])
    assert len(inner.asked) == 3 and not any(d.cached for d in first)

    # The same pixels as an array hit the row the PNG file filled.
    again = cached.describe([pixels, str(paths[1])])
    assert len(inner.asked) == 3 and all(d.cached for d in again)
    assert again[0].text == first[0].text and again[0].verdict == "yes"

    other_prompt = CachedDescriber(
        CountingDescriber(inner.texts, prompt=Prompt("realm", PAPER_PROMPT + " Answer briefly.")), cache_file
    )
    other_prompt.describe([str(paths[0])])
    assert len(other_prompt.describer.asked) == 1
    other_model = CachedDescriber(CountingDescriber(inner.texts, model="another"), cache_file)
    other_model.describe([str(paths[0])])
    assert len(other_model.describer.asked) == 1

    with sqlite3.connect(cache_file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in connection.execute("PRAGMA table_info(descriptions)")]
    assert columns == ["image_sha256", "model", "prompt_id", "text", "created_at"]
    assert len(DescriptionCache(cache_file)) == 5


def test_identical_images_in_one_batch_are_described_once(tmp_path):
    [path] = save_images(tmp_path, 1)
    inner = CountingDescriber({"img0.png": "No."})
    results = CachedDescriber(inner, tmp_path / "c.sqlite3").describe([str(path), str(path)])
    assert inner.asked == [str(path)]
    assert [d.text for d in results] == ["No.", "No."] and [d.cached for d in results] == [False, True]


def test_failures_are_not_cached(tmp_path):
    [path] = save_images(tmp_path, 1)
    cache_file = tmp_path / "c.sqlite3"
    inner = CountingDescriber({})
    [failed] = CachedDescriber(inner, cache_file).describe([str(path)], on_error="skip")
    assert not failed.ok and len(DescriptionCache(cache_file)) == 0


def _write_entries(arguments: tuple[str, int]) -> None:
    path, worker = arguments
    cache = DescriptionCache(path)
    for index in range(40):
        cache.put_many({f"{worker}-{index}": f"text {worker} {index}"}, "model", "prompt")


def test_several_processes_can_write_at_once(tmp_path):
    cache_file = str(tmp_path / "shared.sqlite3")
    DescriptionCache(cache_file)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_write_entries, [(cache_file, worker) for worker in range(4)])
    cache = DescriptionCache(cache_file)
    assert len(cache) == 160
    found = cache.get_many([f"{w}-{i}" for w in range(4) for i in range(40)], "model", "prompt")
    assert found["3-39"] == "text 3 39" and len(found) == 160


def test_default_cache_location_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REALNESS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_path() == tmp_path / "elsewhere" / "descriptions.sqlite3"
    monkeypatch.delenv("REALNESS_CACHE_DIR")
    assert default_cache_path().name == "descriptions.sqlite3"
    assert "realness" in str(default_cache_path())


def test_build_describer_specs(tmp_path):
    table = tmp_path / "d.csv"
    table.write_text("filename,MOS,description\nimg0.png,0,No.\n")
    assert isinstance(build_describer(f"static:{table}"), StaticDescriber)
    for bad in ("gpt", "static:", "ftp://host/v1"):
        with pytest.raises(RealnessError, match="unknown describer"):
            build_describer(bad)


def run_describe_cli(argv: list[str]) -> int:
    from realness.cli import describe

    parser = argparse.ArgumentParser(prog="realness")
    describe.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["describe", *argv])
    threads = torch.get_num_threads()
    try:
        return args.run(args)
    finally:
        torch.set_num_threads(threads)  # the command narrows torch's pool; keep it from leaking into other tests


def test_cli_writes_the_raise_td_layout_and_summarizes(tmp_path, capsys):
    from fake_openai import FakeOpenAIServer

    pytest.importorskip("openai")
    images = tmp_path / "images"
    save_images(images, 3)
    (images / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "descriptions.csv"
    cache = tmp_path / "cache.sqlite3"
    with FakeOpenAIServer() as server:
        argv = [str(images), "--describer", f"openai:fake-vlm@{server.base_url}", "--out", str(out),
                "--description-cache", str(cache), "--no-progress"]
        assert run_describe_cli(argv) == 1  # one image could not be read
        first_err = capsys.readouterr().err
        rows = list(csv.DictReader(out.open()))
        # Keyed by the path as given, so equally named files in two folders never share a row.
        assert [row["path"] for row in rows] == [str(images / name) for name in ("broken.png", "img0.png", "img1.png", "img2.png")]
        assert list(rows[0]) == ["path", "description", "verdict", "error"]
        assert rows[0]["error"] and not rows[0]["description"]  # the failed image keeps its row, with the reason
        rows = rows[1:]
        assert all(row["description"].startswith("Somewhat. Image ") and row["verdict"] == "somewhat" for row in rows)
        assert "skipped" in first_err and "broken.png" in first_err
        assert "described 3 (cached 0), failed 1, tokens used" in first_err
        requests = len(server.chat_requests)

        assert run_describe_cli(argv) == 1
        assert len(server.chat_requests) == requests
        assert "described 3 (cached 3), failed 1, tokens used 0" in capsys.readouterr().err

    # The CSV it wrote feeds a StaticDescriber.
    static = StaticDescriber.from_csv(out)
    assert static.describe(str(images / "img1.png"))[0].text == rows[1]["description"]


@pytest.mark.dataset
def test_static_describer_reads_raise_td():
    from conftest import require_raise_td

    root = require_raise_td()
    describer = StaticDescriber.from_csv(root / "train" / "image_descriptions.csv")
    images = sorted((root / "train" / "images").glob("*.png"))[:5]
    descriptions = describer.describe([str(p) for p in images])
    assert all(d.ok and d.verdict in ("yes", "no", "somewhat") for d in descriptions)


def test_cached_files_are_not_decoded_again(tmp_path, monkeypatch):
    """A re-run over unchanged files answers from the cache without reading them; an edit is noticed."""
    import os

    import numpy as np
    from PIL import Image

    import realness.io.inputs
    from realness.describers import BaseDescriber, CachedDescriber, Description, DescriptionCache

    class Counting(BaseDescriber):
        calls = 0

        def describe_tensors(self, images, names):
            Counting.calls += len(images)
            return [Description.success(n, "No.", self.model, self.prompt.id) for n in names]

    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.fromarray(np.full((8, 8, 3), index * 40, dtype=np.uint8)).save(path)
        paths.append(path)
    describer = CachedDescriber(Counting("counting"), DescriptionCache(tmp_path / "cache.sqlite3"))
    first = describer.describe(paths)
    decoded = []
    original = realness.io.inputs.load_image
    monkeypatch.setattr(realness.io.inputs, "load_image", lambda item, **kw: decoded.append(item) or original(item, **kw))
    second = describer.describe(paths)
    assert Counting.calls == 3 and decoded == []
    assert [d.text for d in second] == [d.text for d in first] and all(d.cached for d in second)
    assert [d.item for d in second] == [d.item for d in first]
    # Same pixels saved again with a new modification time: decoded and hashed, still a cache hit.
    Image.fromarray(np.full((8, 8, 3), 0, dtype=np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(1, 1))
    describer.describe(paths)
    assert decoded == [paths[0]] and Counting.calls == 3





def test_describe_keeps_a_failed_image_row_and_resume_asks_again(tmp_path, monkeypatch):
    import realness.cli.describe as describe_cli

    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((40, 48, 3), 60 * index, dtype=np.uint8)).save(images / f"img{index}.png")
    texts = tmp_path / "texts.csv"
    texts.write_text("filename,description\nimg0.png,No.\nimg1.png,Yes. The wall melts.\nimg2.png,No.\n")
    real_build = describe_cli.build_describer_from_args

    class FlakyThenInterrupted:
        """img1's server fails once; Ctrl-C comes while img2 is asked."""

        def __init__(self, inner):
            self.inner = inner

        def describe(self, items, on_error="raise"):
            if Path(items[0]).name == "img2.png":
                raise KeyboardInterrupt
            described = self.inner.describe(items, on_error=on_error)
            if Path(items[0]).name == "img1.png":
                return [Description.failure(items[0], "server error 503", self.inner.model, self.inner.prompt.id)]
            return described

    monkeypatch.setattr(describe_cli, "build_describer_from_args", lambda args, **o: FlakyThenInterrupted(real_build(args, **o)))
    out = tmp_path / "described.csv"
    argv = [str(images), "--describer", f"static:{texts}", "--no-description-cache", "--no-progress", "--batch-size", "1",
            "--out", str(out)]
    assert run_describe_cli(argv) == 130
    monkeypatch.setattr(describe_cli, "build_describer_from_args", real_build)
    assert run_describe_cli([*argv, "--resume"]) == 0
    rows = {Path(row["path"]).name: row for row in csv.DictReader(out.open())}
    assert [rows[f"img{i}.png"]["description"] for i in range(3)] == ["No.", "Yes. The wall melts.", "No."]
    assert all(not row["error"] for row in rows.values())
