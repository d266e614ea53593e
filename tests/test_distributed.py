"""The ray engine (realness.distributed) on local Ray with 2 CPUs, and its Ray-free parts.

One local Ray instance serves the whole module (start-up costs seconds); the pipelines run
the tiny random CORE model, so the tests check mechanics and agreement with the local
engine, never the bundled model's numbers.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from realness.distributed import (
    ParquetOutput,
    RequestSlots,
    description_schema,
    list_source_paths,
    plan_actors,
    score_dataset,
    score_schema,
)
from realness.distributed.schema import rows_to_table
from realness.errors import MissingDependencyError, RealnessError

pq = pytest.importorskip("pyarrow.parquet")

GOOD_IMAGES = 52


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        import logging

        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """52 small PNGs in two sub-folders, a text file named .png and a truncated PNG."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for index in range(GOOD_IMAGES):
        sub = folder / ("a" if index % 2 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + index % 7, 24, 3), dtype=np.uint8)).save(sub / f"img{index:02d}.png")
    (folder / "not_an_image.png").write_text("hello, I am text")
    whole = (folder / "a" / "img01.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return folder


def one_line_error(err: str) -> str:
    """The one line a refused run writes (no traceback, nothing else)."""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def read_scores(out: Path) -> dict[str, dict]:
    table = ParquetOutput(out, score_schema()).read()
    rows = table.to_pylist()
    assert len({row["path"] for row in rows}) == len(rows), "a path was written twice"
    return {row["path"]: row for row in rows}


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


# --- Ray-free parts ------------------------------------------------------------------------


def test_plan_leaves_one_cpu_free_and_refuses_a_pool_that_cannot_fit():
    assert plan_actors("score", resources={"CPU": 2}) == plan_actors("score", actors=1, resources={"CPU": 2})
    two = plan_actors("score", actors=2, resources={"CPU": 2})
    assert (two.actors, two.cpus_per_actor, two.threads) == (2, 0.5, 1)
    big = plan_actors("score", resources={"CPU": 16})
    assert (big.actors, big.cpus_per_actor, big.threads) == (15, 1.0, 1)
    gpu = plan_actors("score", resources={"CPU": 16, "GPU": 4})
    assert (gpu.actors, gpu.gpus_per_actor) == (4, 1.0)
    with pytest.raises(RealnessError, match=r"the score stage needs 2 actors x 1 CPUs \+ 1 CPU left free = 3 CPUs"):
        plan_actors("score", actors=2, cpus_per_actor=1, resources={"CPU": 2})
    with pytest.raises(RealnessError, match="at least 2 CPUs"):
        plan_actors("describe", resources={"CPU": 1}, light=True)


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch, image_folder, tmp_path, capsys):
    from realness.distributed import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'realness\[ray\]'"):
        require_ray()
    assert run_cli("score", image_folder, "--engine", "ray", "--out", tmp_path / "o.parquet") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "realness[ray]" in err


def test_cli_ray_engine_needs_an_output_folder(image_folder, capsys):
    assert run_cli("score", image_folder, "--engine", "ray") == 2
    assert "--out" in capsys.readouterr().err


def test_parquet_output_sets_aside_damaged_files_and_retries_failed_rows(tmp_path):
    out = tmp_path / "out.parquet"
    output = ParquetOutput(out, score_schema())
    assert output.resume().done == set()
    output.write(rows_to_table([{"path": "a.png", "score": 1.0}, {"path": "b.png", "error": "corrupt"}], score_schema()))
    second = output.write(rows_to_table([{"path": "c.png", "score": 2.0}], score_schema()))
    second.write_bytes(second.read_bytes()[:40])  # what a killed writer without atomic rename leaves
    (out / ".part-x.parquet.tmp").write_bytes(b"half")  # a temporary file of a killed run
    fresh = ParquetOutput(out, score_schema())
    with pytest.warns(UserWarning, match="unreadable Parquet file"):
        state = fresh.resume()
    assert state.done == {"a.png", "b.png"}
    assert [p for p, _ in state.set_aside] == [second]
    assert (out / "_set_aside" / second.name).is_file() and not list(out.glob(".*.tmp"))
    retried = fresh.resume(retry_failed=True)
    assert retried.done == {"a.png"} and retried.retried == ["b.png"]
    assert fresh.read().column("path").to_pylist() == ["a.png"]


def test_parquet_output_refuses_a_file_and_a_foreign_table(tmp_path):
    plain = tmp_path / "scores.csv"
    plain.write_text("x")
    with pytest.raises(RealnessError, match="is a file"):
        ParquetOutput(plain, score_schema())
    ParquetOutput(tmp_path / "d", description_schema()).write(rows_to_table([{"path": "a.png"}], description_schema()))
    with pytest.raises(RealnessError, match="not this output's"):
        ParquetOutput(tmp_path / "d", score_schema()).resume()


def test_request_slots_space_requests_evenly():
    slots = RequestSlots(requests_per_minute=600)
    waits = [slots.reserve() for _ in range(5)]
    assert waits[0] == pytest.approx(0.0, abs=0.01)
    assert waits[4] == pytest.approx(0.4, abs=0.02)


# --- on local Ray ------------------------------------------------------------------------------


def test_score_on_ray_matches_local_engine_and_names_errors_per_row(local_ray, image_folder, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert run_cli("score", image_folder, "--model", tiny_model_dir, "--engine", "ray", "--actors", "2", "--out", out) == 1
    rows = read_scores(out)
    assert len(rows) == GOOD_IMAGES + 2
    bad = {Path(path).name: row["error"] for path, row in rows.items() if row["error"] is not None}
    assert bad.keys() == {"not_an_image.png", "truncated.png"}
    assert "not an image file" in bad["not_an_image.png"] and "truncated" in bad["truncated.png"]
    assert all(row["score"] is None for row in rows.values() if row["error"])
    assert {row["scorer"] for row in rows.values()} == {str(tiny_model_dir)} and all(r["scorer_version"] for r in rows.values())
    assert f"{GOOD_IMAGES} scored, 2 failed" in capsys.readouterr().err

    local_csv = tmp_path / "local.csv"
    run_cli("score", image_folder, "--model", tiny_model_dir, "--out", local_csv)
    with open(local_csv, newline="") as handle:
        local = {row["path"]: row["score"] for row in csv.DictReader(handle)}
    assert local.keys() == rows.keys()
    for path, score in local.items():
        if score:
            assert rows[path]["score"] == pytest.approx(float(score), abs=1e-5)

    files = sorted(out.glob("*.parquet"))
    assert run_cli("score", image_folder, "--model", tiny_model_dir, "--engine", "ray", "--out", out, "--resume") == 0
    assert f"0 scored, 0 failed, {GOOD_IMAGES + 2} already in" in capsys.readouterr().err
    assert sorted(out.glob("*.parquet")) == files

    # A killed run leaves a truncated file: it is set aside and exactly its rows are redone.
    victim = files[0]
    victim_paths = set(pq.read_table(victim).column("path").to_pylist())
    victim.write_bytes(victim.read_bytes()[:100])
    (out / ".part-killed.parquet.tmp").write_bytes(b"PAR1 half")  # an unfinished write of a killed run
    run_cli("score", image_folder, "--model", tiny_model_dir, "--engine", "ray", "--out", out, "--resume")
    err = capsys.readouterr().err
    scored, failed, kept = map(int, re.search(r"(\d+) scored, (\d+) failed, (\d+) already in", err).groups())
    assert (scored + failed, kept) == (len(victim_paths), GOOD_IMAGES + 2 - len(victim_paths))
    assert "1 damaged files set aside and redone" in err
    assert (out / "_set_aside" / victim.name).is_file() and not list(out.glob(".*.tmp"))
    again = read_scores(out)
    assert again.keys() == rows.keys()
    for path in victim_paths:
        assert again[path]["score"] == pytest.approx(rows[path]["score"], abs=1e-6)


def test_ray_runs_hold_out_and_its_run_record_as_local_runs_do(local_ray, image_folder, tiny_model_dir, tmp_path,
                                                               capsys, monkeypatch):
    import realness.cli.engine as engine

    out = tmp_path / "scores.parquet"
    argv = ["score", str(image_folder / "a"), "--model", str(tiny_model_dir), "--engine", "ray", "--actors", "1",
            "--no-progress", "--out", str(out)]
    second: list[subprocess.CompletedProcess] = []
    real_score_dataset = engine.score_dataset

    def while_running(*args, **kwargs):
        # A second Ray run on the same --out, started while this one writes it.
        second.append(subprocess.run([sys.executable, "-m", "realness.cli", *argv], capture_output=True, text=True,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300))
        return real_score_dataset(*args, **kwargs)

    monkeypatch.setattr(engine, "score_dataset", while_running)
    assert run_cli(*argv) == 0
    monkeypatch.undo()
    refused = second[0]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line = one_line_error(refused.stderr)
    assert re.fullmatch(rf"realness score: {re.escape(str(out))}: another realness run is writing it \(pid \d+, started "
                        r".*\); wait for it to finish, or choose another --out", line), line
    assert not (tmp_path / "scores.parquet.lock").exists()  # released when the run ended
    first = read_scores(out)
    assert len(first) == GOOD_IMAGES // 2 and all(Path(p).parent.name == "a" for p in first)
    capsys.readouterr()

    # --resume of the same finished run: nothing to do. Of a run over other images: done again, as locally.
    assert run_cli(*argv, "--resume") == 0
    assert f"0 scored, 0 failed, {GOOD_IMAGES // 2} already in" in capsys.readouterr().err
    other = [a if a != str(image_folder / "a") else str(image_folder / "b") for a in argv]
    assert run_cli(*other, "--resume") == 0
    assert f"--resume: {out} was finished by a different run (other images, model or settings)" in capsys.readouterr().err
    redone = read_scores(out)
    assert len(redone) == GOOD_IMAGES // 2 and all(Path(p).parent.name == "b" for p in redone)

    # An interrupted run's folder: refused without --resume, and under --resume by a run over other images,
    # with the lines a leftover journal gets from the local engine.
    def interrupted(*args, **kwargs):
        real_score_dataset(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "score_dataset", interrupted)
    assert run_cli(*argv) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert run_cli(*other) == 2
    assert one_line_error(capsys.readouterr().err) == (
        f"realness score: {out}: left by an interrupted run; add --resume to continue it, or delete it to start over")
    assert run_cli(*other, "--resume") == 2
    assert one_line_error(capsys.readouterr().err) == (
        f"realness score: {out}: saved by a different run (other images, model or settings), so its rows are not this "
        "run's; run the command that wrote it with --resume, or delete it to start over")
    assert run_cli(*argv, "--resume") == 0  # the run that wrote it continues it
    assert f"0 scored, 0 failed, {GOOD_IMAGES // 2} already in" in capsys.readouterr().err


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_filter_on_ray_keeps_and_exports_what_local_does_and_resumes(local_ray, image_folder, tiny_model_dir, tmp_path, capsys):
    def filter_(out: Path, export: Path, *extra: str) -> int:
        return run_cli("filter", image_folder, "--model", tiny_model_dir, "--device", "cpu", "--top-k", "10", "--all",
                       "--out", out, "--export", export, "--no-progress", *extra)

    assert filter_(tmp_path / "local.csv", tmp_path / "local-kept") == 1  # the two broken files
    local = read_csv(tmp_path / "local.csv")
    local_kept = sorted(str(p.relative_to(tmp_path / "local-kept")) for p in (tmp_path / "local-kept").rglob("*.png"))
    assert len(local_kept) == 10
    capsys.readouterr()

    def assert_as_local(out: Path, export: Path) -> None:
        rows = read_csv(out)
        assert [(r["rank"], r["path"], r["kept"], r["verdict"], r["error"]) for r in rows] == [
            (r["rank"], r["path"], r["kept"], r["verdict"], r["error"]) for r in local
        ]
        for row, expected in zip(rows, local):
            assert (row["score"] == "") == (expected["score"] == "")
            if row["score"]:
                assert float(row["score"]) == pytest.approx(float(expected["score"]), abs=1e-5)
        assert sorted(str(p.relative_to(export)) for p in export.rglob("*.png")) == local_kept
        assert not Path(f"{out}.scores").exists()  # the ranking is written: its scores are not kept

    out, export = tmp_path / "ray.csv", tmp_path / "ray-kept"
    assert filter_(out, export, "--engine", "ray", "--actors", "1") == 1
    assert_as_local(out, export)
    assert "kept 10 of 52 scored images, 2 failed" in capsys.readouterr().err

    # An interrupted Ray run leaves some scores in OUT.scores: a re-run needs --resume and scores only the rest.
    out, export = tmp_path / "resumed.csv", tmp_path / "resumed-kept"
    first = list_source_paths(str(image_folder))[:20]
    score_dataset(first, model=str(tiny_model_dir), out=f"{out}.scores", actors=1, progress=False)
    assert filter_(out, export, "--engine", "ray", "--actors", "1") == 2
    assert "resumed.csv.scores: left by an interrupted run; add --resume" in capsys.readouterr().err
    assert filter_(out, export, "--engine", "ray", "--actors", "1", "--resume") == 1
    err = capsys.readouterr().err
    assert "32 scored, 2 failed, 20 already in" in err and "(20 scored by an earlier run)" in err
    assert_as_local(out, export)


def test_filter_on_ray_needs_out_and_refuses_a_describer(image_folder, capsys):
    assert run_cli("filter", image_folder, "--engine", "ray") == 2
    assert "realness filter: --out: the ray engine keeps its scores beside --out" in capsys.readouterr().err
    assert run_cli("filter", image_folder, "--engine", "ray", "--out", "x.csv", "--describer", "openai") == 2
    assert "realness filter: --describer: with --engine ray describing is its own stage" in capsys.readouterr().err


def test_score_dataset_reads_manifests_and_ray_datasets_of_bytes(local_ray, image_folder, tiny_model_dir, tmp_path):
    from realness.distributed import score_dataset

    manifest = tmp_path / "manifest.csv"
    chosen = sorted(str(p.relative_to(image_folder)) for p in image_folder.rglob("img0*.png"))
    shutil.copytree(image_folder, tmp_path / "imgs")
    manifest.write_text("path\n" + "\n".join(f"imgs/{name}" for name in chosen) + "\nimgs/missing.png\n")
    summary = score_dataset(manifest, model=tiny_model_dir, out=tmp_path / "m.parquet", batch_size=4, progress=False)
    rows = read_scores(tmp_path / "m.parquet")
    assert (summary.written, summary.failed) == (len(chosen) + 1, 1)
    assert "file not found" in rows[str(tmp_path / "imgs" / "missing.png")]["error"]

    dataset = local_ray.data.read_binary_files(str(tmp_path / "imgs"), include_paths=True)
    options = {"model": tiny_model_dir, "bytes_column": "bytes", "out": tmp_path / "b.parquet", "batch_size": 8}
    options["progress"] = False
    summary = score_dataset(dataset, **options)
    from_bytes = read_scores(tmp_path / "b.parquet")
    assert summary.written == GOOD_IMAGES + 2 and summary.failed == 2
    for name in chosen:
        by_path = rows[str(tmp_path / "imgs" / name)]["score"]
        assert next(r["score"] for p, r in from_bytes.items() if p.endswith(name)) == pytest.approx(by_path, abs=1e-5)
    rerun = score_dataset(dataset, **options)
    assert (rerun.written, rerun.already_done) == (0, GOOD_IMAGES + 2)


def test_a_stalled_stage_fails_naming_it(local_ray, image_folder, tiny_model_dir, tmp_path):
    from realness.distributed import score_dataset

    with pytest.raises(RealnessError, match="the score stage stalled"):
        score_dataset(image_folder, model=tiny_model_dir, out=tmp_path / "s.parquet", stall_timeout=0.01, progress=False)


@pytest.fixture
def describe_folder(tmp_path) -> Path:
    """16 distinct images, byte-identical copies of 4 of them in a sub-folder, and one corrupt file."""
    folder = tmp_path / "to_describe"
    (folder / "copies").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(16):
        Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(folder / f"u{index:02d}.png")
    for index in range(4):
        shutil.copy(folder / f"u{index:02d}.png", folder / "copies" / f"u{index:02d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return folder


def test_describe_on_ray_keeps_requests_in_flight_and_never_sends_an_image_twice(local_ray, describe_folder, tmp_path, capsys):
    fake_openai = pytest.importorskip("fake_openai")
    with fake_openai.FakeOpenAIServer(delay=0.3) as server:
        out = tmp_path / "descriptions.parquet"
        spec = f"openai:{fake_openai.MODEL_NAME}@{server.base_url}"
        argv = ["describe", describe_folder, "--describer", spec, "--engine", "ray", "--actors", "2",
                "--concurrency", "8", "--no-progress", "--out", out]
        assert run_cli(*argv) == 1  # the broken file
        sent = [request.key for request in server.chat_requests]
        assert len(sent) == len(set(sent)) == 16
        assert server.max_in_flight > 2  # more than one request per actor at a time
        rows = {row["path"]: row for row in ParquetOutput(out, description_schema()).read().to_pylist()}
        assert len(rows) == 21
        copy, original = rows[str(describe_folder / "copies" / "u00.png")], rows[str(describe_folder / "u00.png")]
        assert copy["description"] == original["description"] and copy["image_sha256"] == original["image_sha256"]
        assert copy["cached"] != original["cached"]
        assert rows[str(describe_folder / "broken.png")]["error"]
        assert rows[str(describe_folder / "broken.png")]["description"] is None
        assert "20 described (4 without a request), 1 failed" in capsys.readouterr().err

        # A re-run sends nothing; the output (keyed by pixel hash) answers new copies without a request.
        shutil.copy(describe_folder / "u05.png", describe_folder / "copies" / "again.png")
        run_cli(*argv, "--resume")
        assert len(server.chat_requests) == 16
        again = ParquetOutput(out, description_schema()).read().to_pylist()
        assert len(again) == 22 and next(r for r in again if r["path"].endswith("again.png"))["cached"]


def test_describe_requests_per_minute_hold_across_actors_and_the_driver_fills_the_sqlite_cache(
    local_ray, describe_folder, tmp_path
):
    fake_openai = pytest.importorskip("fake_openai")
    from realness.describers import DescriptionCache
    from realness.describers.base import DEFAULT_PROMPT
    from realness.distributed import describe_dataset
    from realness.io.inputs import load_image, pixel_sha256

    cache = DescriptionCache(tmp_path / "descriptions.sqlite3")
    known = pixel_sha256(load_image(describe_folder / "u07.png"))
    cache.put_many({known: "No. From the local cache."}, fake_openai.MODEL_NAME, DEFAULT_PROMPT.id)
    with fake_openai.FakeOpenAIServer() as server:
        summary = describe_dataset(
            describe_folder, describer=f"openai:{fake_openai.MODEL_NAME}@{server.base_url}", out=tmp_path / "d.parquet",
            actors=2, concurrency=8, requests_per_minute=600, description_cache=cache.path, progress=False,
        )
        times = sorted(request.received_at for request in server.chat_requests)
    assert len(times) == 15 and summary.cached == 5  # u07 from sqlite, 4 copies from this run
    # 600/min is one every 0.1 s whichever actor sends: 15 requests span 1.4 s (unlimited, 16 in flight
    # would arrive together, within milliseconds); the margin absorbs a first request sent late on a busy machine.
    assert times[-1] - times[0] >= 0.7
    assert len(cache) == 16  # the driver wrote what the actors described back to the local cache
    rows = ParquetOutput(tmp_path / "d.parquet", description_schema()).read().to_pylist()
    assert next(r for r in rows if r["path"].endswith("to_describe/u07.png"))["description"] == "No. From the local cache."
