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
