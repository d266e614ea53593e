"""Ctrl-C in every long subcommand: it stops within one batch, keeps what was done, and
``--resume`` does only the rest.

Each test runs ``python -m realness.cli`` in a subprocess, sends it a real SIGINT once its
journal holds some rows, then resumes it and compares the result with an uninterrupted run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from realness.cli import main
from test_user_files import (
    check_table,
    make_folder_with_bad_files,
    one_line_error,
    quiet_env,
    read_rows,
    start_interruptible,
    write_image,
)


def journal_lines(journal: Path) -> int:
    """The rows a journal holds (its first line records the run that wrote it)."""
    try:
        return max(journal.read_bytes().count(b"\n") - 1, 0)
    except FileNotFoundError:
        return -1


def interrupt_when(command: list[str], journal: Path, rows: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command``; send it SIGINT (Ctrl-C) once ``journal`` holds ``rows`` rows; wait for it to stop."""
    process = start_interruptible(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or quiet_env(), text=True)
    deadline = time.monotonic() + 300
    while journal_lines(journal) < rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before it could be interrupted"
    at_signal = journal_lines(journal)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "run it again with --resume to finish" in stderr, stderr
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    result.rows_at_signal = at_signal
    return result


def run_cli(command: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env or quiet_env())
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "realness.cli", *args]


def counted(pattern: str, text: str) -> tuple[int, ...]:
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return tuple(int(group) for group in match.groups())


# --- score --------------------------------------------------------------------------------------


def score_args(folder: Path, model_dir: Path, out: Path, *extra: str) -> list[str]:
    return cli("score", str(folder), "--model", str(model_dir), "--device", "cpu", "--batch-size", "8",
               "--out", str(out), "--no-progress", *extra)


def test_score_ctrl_c_after_12_of_100_keeps_them_and_resume_does_only_the_rest(tiny_model_dir, tmp_path):
    folder = tmp_path / "images"
    images = make_folder_with_bad_files(folder, 100, seed=12)
    out = tmp_path / "scores.csv"
    interrupted = interrupt_when(score_args(folder, tiny_model_dir, out), Path(f"{out}.partial"), 12)
    kept = check_table(out, images)
    # Within one batch of the signal: at most one more batch of 8 finished after it.
    assert 12 <= interrupted.rows_at_signal <= len(kept) <= interrupted.rows_at_signal + 8
    assert Path(f"{out}.partial").exists()  # kept: it proves the rows in --out are this run's to --resume
    # The line counts what --out holds, the batch saved as the signal came included.
    scored, failed = counted(r"interrupted after (\d+) scored, (\d+) failed of 100", interrupted.stderr)
    assert scored + failed == len(kept)

    resumed = run_cli(score_args(folder, tiny_model_dir, out, "--resume"))
    assert resumed.returncode == 1  # the broken files
    scored, failed, already = counted(r"(\d+) scored, (\d+) failed, (\d+) already there", resumed.stderr)
    assert already == len(kept) and scored + failed == 100 - len(kept)  # only the rest
    assert [row["path"] for row in read_rows(out)] == images
    for path, row in kept.items():
        assert check_table(out, images)[path] == row  # the rows kept were not redone


def test_score_ctrl_c_before_the_first_batch_leaves_an_earlier_out_as_it_was(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from realness.core import RealnessScorer

    folder = tmp_path / "images"
    make_folder_with_bad_files(folder, 10, seed=3)
    out = tmp_path / "scores.csv"
    out.write_text("path,score,verdict,description,error\nearlier.png,0.5,,,\n")
    before = out.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(RealnessScorer, "iter_batches", interrupted)
    code = main(["score", str(folder), "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert "nothing new to keep; everything was left as it was" in err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "scores.csv", "tiny-model"]


def test_resume_without_out_is_one_line_for_every_command(tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    for command in (["score"], ["describe"], ["filter"], ["map", "--description", "x"]):
        code = main([command[0], str(image), *command[1:], "--resume"])
        err = one_line_error(capsys, code)
        assert err.startswith(f"realness {command[0]}: --resume: needs --out, the "), err


def test_ctrl_c_while_the_cli_loads_is_one_line(monkeypatch, capsys):
    import realness.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(realness.cli, "build_parser", interrupted)
    assert main(["score", "x.png"]) == 130
    assert capsys.readouterr().err == "realness: interrupted before starting; nothing was done\n"


# --- describe -----------------------------------------------------------------------------------


def test_describe_ctrl_c_keeps_the_descriptions_and_resume_asks_only_for_the_rest(tmp_path):
    from fake_openai import FakeOpenAIServer

    pytest.importorskip("openai")
    folder = tmp_path / "images"
    images = make_folder_with_bad_files(folder, 40, bad_share=0.0, seed=7)
    clean_out, out = tmp_path / "clean.csv", tmp_path / "descriptions.csv"
    with FakeOpenAIServer(delay=0.05) as server:
        def describe(target: Path, *extra: str) -> list[str]:
            return cli("describe", str(folder), "--describer", f"openai:fake-vlm@{server.base_url}", "--concurrency", "2",
                       "--batch-size", "4", "--no-description-cache", "--no-progress", "--out", str(target), *extra)

        assert run_cli(describe(clean_out)).returncode == 0
        clean = read_rows(clean_out)
        server.requests.clear()
        interrupted = interrupt_when(describe(out), Path(f"{out}.partial"), 12)
        kept = read_rows(out)
        assert 12 <= interrupted.rows_at_signal <= len(kept) <= interrupted.rows_at_signal + 4
        assert kept == [row for row in clean if row["path"] in {r["path"] for r in kept}]
        assert Path(f"{out}.partial").exists()  # kept for --resume
        asked_before = len(server.chat_requests)
        assert counted(r"interrupted after (\d+) described", interrupted.stderr) == (len(kept),)

        resumed = run_cli(describe(out, "--resume"))
        assert resumed.returncode == 0, resumed.stderr
        assert f"{len(kept)} already there" in resumed.stderr
        assert len(server.chat_requests) - asked_before == len(images) - len(kept)  # only the rest was asked for
    assert read_rows(out) == clean


# --- filter -------------------------------------------------------------------------------------


def test_filter_ctrl_c_keeps_the_scores_and_resume_ranks_and_exports_what_an_uninterrupted_run_does(tiny_model_dir, tmp_path):
    folder = tmp_path / "images"
    make_folder_with_bad_files(folder, 100, seed=21)

    def filter_(out: Path, export: Path, *extra: str) -> list[str]:
        return cli("filter", str(folder), "--model", str(tiny_model_dir), "--device", "cpu", "--batch-size", "8",
                   "--top-k", "20", "--all", "--out", str(out), "--export", str(export), "--no-progress", *extra)

    clean_out, clean_export = tmp_path / "clean.csv", tmp_path / "clean-kept"
    assert run_cli(filter_(clean_out, clean_export)).returncode == 1  # the broken files
    out, export = tmp_path / "ranked.csv", tmp_path / "kept"
    journal = Path(f"{out}.partial")
    interrupted = interrupt_when(filter_(out, export), journal, 12)
    # The ranking needs every score: nothing is ranked or exported yet, the scores wait in the journal.
    assert not out.exists() and not export.exists()
    kept = journal_lines(journal)
    assert 12 <= interrupted.rows_at_signal <= kept <= interrupted.rows_at_signal + 8
    scored, failed = counted(r"interrupted after (\d+) scored, (\d+) failed of 100", interrupted.stderr)
    assert scored + failed == kept
    assert f"kept in {journal}" in interrupted.stderr
    # Starting over by accident would throw the scores away: refused, one line, exit 2.
    again = run_cli(filter_(out, export))
    assert again.returncode == 2 and "left by an interrupted run; add --resume" in again.stderr
    assert journal_lines(journal) == kept

    resumed = run_cli(filter_(out, export, "--resume"))
    assert resumed.returncode == 1, resumed.stderr
    assert f"({kept} scored by an earlier run)" in resumed.stderr
    assert not journal.exists()
    assert_same_ranking(read_rows(out), read_rows(clean_out))
    assert sorted(p.name for p in export.iterdir()) == sorted(p.name for p in clean_export.iterdir())


def assert_same_ranking(rows: list[dict], expected: list[dict]) -> None:
    assert [(r["rank"], r["path"], r["kept"], r["error"]) for r in rows] == [
        (r["rank"], r["path"], r["kept"], r["error"]) for r in expected
    ]
    for row, other in zip(rows, expected):
        assert (row["score"] == "") == (other["score"] == "")
        if row["score"]:
            assert float(row["score"]) == pytest.approx(float(other["score"]), abs=1e-5)


# --- map ----------------------------------------------------------------------------------------


def test_map_ctrl_c_keeps_the_maps_written_and_resume_maps_only_the_rest(tmp_path):
    from test_dream import save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    folder = tmp_path / "images"
    for index in range(24):
        write_image(folder / f"img{index:02d}.png", seed=index, size=(28, 36))
    write_image(folder / "tiny.png", seed=99, size=(5, 6))  # smaller than every window: fails by name
    table = tmp_path / "descriptions.csv"
    table.write_text("filename,description\n" + "".join(f"{p.name},six fingers\n" for p in sorted(folder.iterdir())))

    def map_(out: Path, *extra: str) -> list[str]:
        return cli("map", str(folder), "--descriptions", str(table), "--model", str(clip), "--device", "cpu",
                   "--window-sizes", "16", "8", "--stride", "2", "--npy", "--no-progress", "--out", str(out), *extra)

    clean = tmp_path / "clean-maps"
    assert run_cli(map_(clean)).returncode == 1  # tiny.png
    out = tmp_path / "maps"
    journal = out / "maps.partial"
    interrupted = interrupt_when(map_(out), journal, 5)
    kept = journal_lines(journal)
    assert 5 <= interrupted.rows_at_signal <= kept <= interrupted.rows_at_signal + 1  # within one image
    assert f"kept in {journal}" in interrupted.stderr
    journaled = [json.loads(line)["path"] for line in journal.read_text().splitlines()[1:]]  # after the run's record
    done = {f"{Path(path).stem}_map.npy": (out / f"{Path(path).stem}_map.npy").stat().st_mtime_ns for path in journaled}

    resumed = run_cli(map_(out, "--resume"))
    assert resumed.returncode == 1, resumed.stderr
    mapped = [line for line in resumed.stderr.splitlines() if line.endswith("_map.npy")]
    assert len(mapped) == 24 - kept  # only the rest was mapped (and tiny.png failed again, by name)
    assert "tiny.png" in resumed.stderr
    assert f"{kept} already there" in resumed.stderr
    assert not journal.exists()
    for name, stamp in done.items():
        assert (out / name).stat().st_mtime_ns == stamp, name  # the maps kept were not redone
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    for path in clean.glob("*.npy"):
        assert np.allclose(np.load(out / path.name), np.load(path), atol=1e-5), path.name


def test_troubleshooting_lists_every_message_of_interrupting_and_resuming():
    page = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    messages = [
        "run it again with --resume to finish",
        "nothing new to keep;\neverything was left as it was",
        "realness: interrupted before starting; nothing was done",
        "left by an interrupted run; add --resume to continue it, or delete it to start over",
        "--resume: needs --out, the file to continue",
        "needs --out, the file or folder to continue",
        "`FILE.scores: left by an interrupted run",
        "--out: the ray engine keeps its scores beside --out until the ranking is written",
        "DIR/maps.partial",
        "FILE.partial",
    ]
    assert [message for message in messages if message not in page] == []
