"""Ctrl-C in every long subcommand: it stops within one batch, keeps what was done, and
``--resume`` does only the rest.

Each test runs ``python -m realness.cli`` in a subprocess, sends it a real SIGINT once its
journal holds some rows, then resumes it and compares the result with an uninterrupted run.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from realness.cli import main
from test_user_files import check_table, make_folder_with_bad_files, one_line_error, quiet_env, read_rows


def journal_lines(journal: Path) -> int:
    try:
        return journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


def interrupt_when(command: list[str], journal: Path, rows: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command``; send it SIGINT (Ctrl-C) once ``journal`` holds ``rows`` rows; wait for it to stop."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or quiet_env(), text=True)
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
    assert not Path(f"{out}.partial").exists()
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
    for command in (["score"],):
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
