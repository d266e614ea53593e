"""Nothing lost, round four (issue 36): a silent describer server, finished tables resumed, Ray parity.

Each fault goes through the real CLI (``realness.cli.main``) and is checked for one line naming
the item and the reason, its exit status, and that no result is lost or redone.
"""

from __future__ import annotations

import time

import pytest

from realness.cli import main
from test_run_faults import SilentServer
from test_user_files import write_image

# --- a describer server that accepts and never answers ------------------------------------------


def test_a_silent_server_stops_the_run_after_a_few_timeouts_whatever_the_retries(tmp_path, capsys):
    pytest.importorskip("openai")
    images = [write_image(tmp_path / f"img{i}.png", seed=i, size=(48, 48)) for i in range(2)]
    out = tmp_path / "descriptions.csv"
    server = SilentServer()
    url = f"http://127.0.0.1:{server.port}/v1"
    try:
        started = time.monotonic()
        # No --budget, and retries that would take 20 x 0.5 s and their backoffs per image.
        code = main(["describe", *map(str, images), "--describer", f"openai:fake-vlm@{url}", "--timeout", "0.5",
                     "--max-retries", "20", "--no-description-cache", "--no-progress", "--out", str(out)])
        elapsed = time.monotonic() - started
    finally:
        server.close()
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert elapsed < 6, elapsed  # three timeouts of 0.5 s and two short backoffs, not 20 retries per image
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"realness describe: {url}: 3 requests in a row got no answer within the timeout of 0.5 s; the server "
        "accepts connections but does not answer: check that it is running and not overloaded, or give it a longer "
        "timeout"), err


# --- --resume of a table realness finished -------------------------------------------------------


def test_resume_of_a_finished_table_is_a_no_op_and_a_different_run_is_redone(tiny_model_dir, tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = [write_image(tmp_path / "images" / f"img{i}.png", seed=i) for i in range(3)]
    out = tmp_path / "scores.csv"
    argv = ["score", *map(str, images), "--model", str(tiny_model_dir), "--device", "cpu", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    finished = out.read_bytes(), out.stat().st_mtime_ns

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a table with nothing left to do")

    with monkeypatch.context() as patch:
        patch.setattr("realness.cli.score.RealnessScorer", no_model)
        assert main([*argv, "--resume"]) == 0
    assert capsys.readouterr().err.strip() == f"realness score: 0 scored, 0 failed, 3 already there -> {out}"
    assert (out.read_bytes(), out.stat().st_mtime_ns) == finished  # not even rewritten
    # Another run into the same table (one image fewer) is not this table's run: done again, as before.
    assert main([*argv[:1], *map(str, images[:2]), *argv[4:], "--resume"]) == 0
    assert f"{out} has no journal (scores.csv.partial) proving its rows are this run's; doing all 2 again" in (
        capsys.readouterr().err)
    # A finished table edited by hand is no longer the one its run finished.
    out.write_text(finished[0].decode().replace("img1", "imgX"))
    assert main([*argv, "--resume"]) == 0
    assert "doing all 3 again" in capsys.readouterr().err
