"""Nothing lost, round three (issue 31): full disks, hung servers, special files and two runs on one output.

Each fault goes through the real CLI (``realness.cli.main``, or ``python -m realness.cli`` in a
subprocess where a second process or a small filesystem is the fault) and is checked for one
line naming the file and the reason, its exit status, and that no result is lost, stale or
overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from realness.io.journal import RowJournal
from realness.io.tables import read_table
from test_user_files import one_line_error, quiet_env, write_image

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))  # write_results is benchmark code
from reporting import write_results  # noqa: E402

SCORE_COLUMNS = ("path", "score", "verdict", "description", "error")


def score_argv(paths, model_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["score", *map(str, paths), "--model", str(model_dir), "--device", "cpu", "--no-progress",
            "--out", str(out), *extra]


def scores(path: Path) -> dict[str, str]:
    return {row["path"]: str(row["score"]) for row in read_table(path).rows}


# --- special files ----------------------------------------------------------------------------


def test_a_fifo_or_socket_in_a_folder_is_reported_by_kind_and_never_opened(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "gen"
    good = write_image(folder / "good.png")
    fifo = folder / "x.png"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes: never
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "s.png"))
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    out = tmp_path / "scores.csv"
    code = main(score_argv([folder], tiny_model_dir, out))
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"realness score: {fifo}: a FIFO (named pipe), not an image file; left unopened" in err
    assert f"realness score: {folder / 's.png'}: a socket, not an image file; left unopened" in err
    assert f"realness score: {folder / 'gone.png'}: broken symbolic link" in err
    assert list(scores(out)) == [str(good)]
    # Named directly (or by a glob), it gets the true reason too, not "empty file".
    code = main(score_argv([fifo, good], tiny_model_dir, out))
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"skipped {fifo}: a FIFO (named pipe), not an image file; left unopened" in err
    assert "0 bytes" not in err
    code = main(score_argv([str(folder / "*.png")], tiny_model_dir, out))
    assert code == 0 and f"{fifo}: a FIFO (named pipe)" in capsys.readouterr().err
    sock.close()


# --- a journal is trusted only for the run that wrote it ----------------------------------------


def test_resume_never_hands_back_rows_of_an_earlier_unrelated_table(tiny_model_dir, tmp_path, capsys):
    images = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(4)]
    clean = tmp_path / "clean.csv"
    assert main(score_argv(images, tiny_model_dir, clean)) == 0
    out = tmp_path / "scores.csv"
    out.write_text("path,score,verdict,description,error\n" + "".join(f"{image},0.999,,,\n" for image in images))
    capsys.readouterr()
    code = main(score_argv(images, tiny_model_dir, out, "--resume"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"--resume: {out} has no journal (scores.csv.partial) proving its rows are this run's; doing all 4 again" in err
    assert "already there" not in err
    assert scores(out) == scores(clean)


def test_an_empty_journal_is_no_reason_to_resume_and_a_foreign_one_is_refused(tiny_model_dir, tmp_path, capsys):
    images = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    clean = tmp_path / "clean.csv"
    assert main(score_argv(images, tiny_model_dir, clean)) == 0
    out = tmp_path / "scores.csv"
    journal = tmp_path / "scores.csv.partial"
    journal.write_bytes(b"")  # what a run that failed before its first row leaves
    capsys.readouterr()
    code = main(score_argv(images, tiny_model_dir, out))
    err = capsys.readouterr().err
    assert code == 0 and "add --resume" not in err, err
    assert scores(out) == scores(clean) and not journal.exists()

    # A journal another run saved (other images or settings) is refused, and left as it was.
    other = RowJournal(out, SCORE_COLUMNS, fingerprint="another run")
    other.append([{"path": str(images[0]), "score": 0.999}])
    other.release()
    saved = journal.read_bytes()
    out.write_text("path,score\n")
    code = main(score_argv(images, tiny_model_dir, out, "--resume"))
    err = one_line_error(capsys, code)
    assert err == (f"realness score: {journal}: saved by a different run (other images, model or settings), so its "
                   "rows are not this run's; run the command that wrote it with --resume, or delete it to start over")
    assert journal.read_bytes() == saved and out.read_text() == "path,score\n"


def test_a_disk_too_full_for_the_output_is_refused_before_work_and_resume_keeps_nothing_stale(tiny_model_dir, tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], check=False).returncode != 0:
        pytest.skip("needs unshare -rm (user and mount namespaces) to mount a small tmpfs")
    images = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(4)]
    clean = tmp_path / "clean.csv"
    assert main(score_argv(images, tiny_model_dir, clean)) == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    earlier = "path,score,verdict,description,error\n" + "".join(f"{image},0.999,,,\n" for image in images)
    script = f"""
import json, os, sys
from pathlib import Path
from realness.cli import main
disk = Path({str(disk)!r})
out = disk / "scores.csv"
out.write_text({earlier!r})
filler = disk / "filler"
descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
try:  # fill the disk to its last block
    while True:
        os.write(descriptor, b"x" * 4096)
except OSError:
    os.close(descriptor)
argv = {score_argv(images, tiny_model_dir, disk / "scores.csv")!r}
full = main(argv)
after_full = out.read_text()
left = sorted(p.name for p in disk.iterdir())
filler.unlink()
resumed = main(argv + ["--resume"])
print(json.dumps({{"full": full, "after_full": after_full, "left": left, "resumed": resumed,
                   "table": out.read_text()}}))
"""
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=256k tmpfs "{disk}" && exec "$0" -c "$1"',
         sys.executable, script],
        capture_output=True, text=True, env=quiet_env(), check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    lines = [line for line in done.stderr.splitlines() if line.startswith("realness score:")]
    assert result["full"] == 2 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"realness score: {disk / 'scores.csv'}: the disk is full ("), lines
    assert result["after_full"] == earlier and result["left"] == ["filler", "scores.csv"]  # no journal, nothing lost
    assert result["resumed"] == 0
    rows = {line.split(",")[0]: line.split(",")[1] for line in result["table"].splitlines()[1:]}
    assert rows == scores(clean)  # this run's scores, none of the earlier table's 0.999


def test_a_failed_journal_write_names_the_file_and_keeps_the_rows_saved_before(tiny_model_dir, tmp_path, capsys,
                                                                              monkeypatch):
    import realness.io.journal as journal

    images = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(6)]
    out = tmp_path / "scores.csv"
    real_fsync, calls = os.fsync, []

    def disk_fills(descriptor):  # the third sync: the journal, its first batch, then the disk is full
        calls.append(descriptor)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(journal.os, "fsync", disk_fills)
    code = main(score_argv(images, tiny_model_dir, out, "--batch-size", "2"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1] == f"realness score: {out}.partial: cannot write it (No space left on device)", err
    monkeypatch.setattr(journal.os, "fsync", real_fsync)
    assert len(read_table(out).rows) == 2  # the batch saved before the disk filled
    assert main(score_argv(images, tiny_model_dir, out, "--batch-size", "2", "--resume")) == 0
    # Resumed from the journal: its rows (the batch whose sync failed may be there whole) are not redone.
    scored, already = map(int, re.search(r"(\d+) scored, 0 failed, (\d+) already there", capsys.readouterr().err).groups())
    assert scored + already == 6 and already >= 2
    assert sorted(scores(out)) == sorted(map(str, images))


# --- messages that name the user's file ---------------------------------------------------------


def test_an_out_name_too_long_for_its_journal_is_refused_before_the_model_loads(tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    out = tmp_path / ("s" * 236 + ".csv")  # 240 bytes: fits alone, not with ".partial" and a temporary suffix
    code = main(["score", str(image), "--model", str(tmp_path / "no-such-model"), "--out", str(out)])
    err = one_line_error(capsys, code)
    assert err.startswith(f"realness score: {out}: the file name is 240 bytes; with the .partial journal"), err
    assert "names of at most 233 bytes fit in this folder (limit 255)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="chattr +i needs root")
def test_an_immutable_out_is_refused_before_work_naming_it(tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    out = tmp_path / "scores.csv"
    out.write_text("path,score\nearlier.png,0.5\n")
    if subprocess.run(["chattr", "+i", str(out)], check=False, capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable flag")
    try:
        code = main(["score", str(image), "--model", str(tmp_path / "no-such-model"), "--out", str(out)])
        err = one_line_error(capsys, code)
        assert err == (f"realness score: {out}: the file is immutable or append-only (lsattr shows it); "
                       "it cannot be replaced")
        assert out.read_text() == "path,score\nearlier.png,0.5\n"
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=False)


def test_a_failed_replace_names_the_users_file_not_the_temporary_one(tmp_path):
    from realness.errors import OutputWriteError
    from realness.io.tables import write_table

    out = tmp_path / "scores.csv"
    out.write_text("before\n")
    real_replace = os.replace

    def refused(source, target):
        raise PermissionError(1, "Operation not permitted", source, None, target)

    os.replace = refused
    try:
        with pytest.raises(OutputWriteError) as caught:
            write_table([{"path": "a.png"}], out, ["path"])
    finally:
        os.replace = real_replace
    assert str(caught.value) == (f"{out}: cannot write it (Operation not permitted; is it read-only or immutable "
                                 "(lsattr)?)")
    assert out.read_text() == "before\n" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


# --- one --out, one writer ----------------------------------------------------------------------


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "images"
    images = sorted(str(write_image(folder / f"img{i:03d}.png", seed=i)) for i in range(120))
    out = tmp_path / "scores.csv"
    first = subprocess.Popen(
        [sys.executable, "-m", "realness.cli", *score_argv([folder], tiny_model_dir, out, "--batch-size", "1")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=quiet_env(),
    )
    journal = tmp_path / "scores.csv.partial"
    deadline = time.monotonic() + 120
    while not journal.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.poll() is None, "the first run ended before the second could start"
    code = main(score_argv([folder], tiny_model_dir, out))
    err = one_line_error(capsys, code)
    assert err.startswith(f"realness score: {out}: another realness run is writing it (pid {first.pid}, started "), err
    assert err.endswith("wait for it to finish, or choose another --out")
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert sorted(scores(out)) == images  # the first run's table, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "scores.csv", "tiny-model"]  # no lock left


# --- a describer server that accepts and never answers ------------------------------------------


class SilentServer:
    """Accepts every connection on 127.0.0.1 and never sends a byte."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


def test_a_failing_describer_server_costs_at_most_the_budget_per_image(tmp_path, capsys):
    # A server that answers every request with a 500 (one that never answers at all is stopped
    # sooner: test_run_faults_round4).
    pytest.importorskip("openai")
    from fake_openai import FakeOpenAIServer, image_key

    images = [write_image(tmp_path / f"img{i}.png", seed=i, size=(48, 48)) for i in range(2)]
    out = tmp_path / "descriptions.csv"
    plan = {image_key(np.asarray(Image.open(image).convert("RGB"))): ["500"] * 100 for image in images}
    with FakeOpenAIServer(plan=plan) as server:
        started = time.monotonic()
        code = main(["describe", *map(str, images), "--describer", f"openai:fake-vlm@{server.base_url}",
                     "--timeout", "0.5", "--max-retries", "20", "--budget", "2", "--no-description-cache",
                     "--out", str(out)])
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1, err
    assert elapsed < 2 + 3, elapsed  # both images at once, each within its budget of 2 s (20 retries would be 10 s+)
    for image in images:
        assert f"realness describe: skipped {image}: no answer within the time budget of 2 s" in err, err
    assert "retries; last: " in err  # the progress line shows the server is being retried
    assert "Traceback" not in err
    assert all(not row.get("description") for row in read_table(out).rows) if out.exists() else True


def test_network_flags_refuse_a_describer_that_calls_no_server(tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    table = tmp_path / "d.csv"
    table.write_text("path,description\na.png,No.\n")
    code = main(["describe", str(image), "--describer", f"static:{table}", "--budget", "5", "--out",
                 str(tmp_path / "out.csv")])
    assert one_line_error(capsys, code) == (f"realness describe: --budget: only for describers that call a server "
                                            f"(openai:...), not static:{table}")
    code = main(["describe", str(image), "--describer", "openai:m@http://127.0.0.1:9/v1", "--timeout", "0"])
    assert one_line_error(capsys, code) == "realness describe: --timeout: must be above 0, not 0"
    code = main(["describe", str(image), "--engine", "ray", "--budget", "5", "--out", str(tmp_path / "d.parquet")])
    assert one_line_error(capsys, code) == "realness describe: --budget: not with --engine ray yet; use --engine local"


# --- benchmarks: a smoke run never replaces a full result ------------------------------------------


def test_a_smoke_result_never_replaces_a_full_one(tmp_path):
    from realness.errors import OutputError

    write_results(tmp_path, "gpu_check", {"smoke": False, "seconds": 1.5}, command="python benchmarks/gpu_check.py")
    full = (tmp_path / "gpu_check.json").read_text()
    with pytest.raises(OutputError, match="holds a full recorded result; a smoke or partial run does not replace it"):
        write_results(tmp_path, "gpu_check", {"smoke": True}, command="gpu_check.py --smoke", partial=True)
    assert (tmp_path / "gpu_check.json").read_text() == full
    smoke = tmp_path / "smoke"
    write_results(smoke, "gpu_check", {"smoke": True}, command="gpu_check.py --smoke", partial=True)
    write_results(smoke, "gpu_check", {"smoke": True}, command="gpu_check.py --smoke", partial=True)  # over a smoke: fine
    assert json.loads((smoke / "gpu_check.json").read_text())["partial"] is True


def copied_benchmarks(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """The benchmarks in a scratch folder whose results/ holds a full recorded gpu_check."""
    benchmarks = tmp_path / "benchmarks"
    shutil.copytree(Path(__file__).parents[1] / "benchmarks", benchmarks, ignore=shutil.ignore_patterns("results"))
    recorded = benchmarks / "results"
    write_results(recorded, "gpu_check", {"smoke": False, "device": "cuda"}, command="python benchmarks/gpu_check.py")
    return benchmarks / "gpu_check.py", recorded, {path.name: path.read_bytes() for path in recorded.iterdir()}


def test_gpu_check_smoke_into_a_full_result_is_refused_before_any_work(tmp_path):
    script, recorded, before = copied_benchmarks(tmp_path)
    refused = subprocess.run([sys.executable, str(script), "--smoke", "--out-dir", str(recorded)], capture_output=True,
                             text=True, env=quiet_env(), check=False, timeout=300)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        f"gpu_check: {recorded / 'gpu_check.json'}: holds a full recorded result; a smoke or partial run does not "
        "replace it (write it elsewhere with --out-dir DIR)"), refused.stderr
    assert {path.name: path.read_bytes() for path in recorded.iterdir()} == before


@pytest.mark.slow
def test_gpu_check_smoke_without_out_dir_leaves_the_recorded_gpu_result_alone(tmp_path):
    script, recorded, before = copied_benchmarks(tmp_path)
    smoke = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, env=quiet_env(),
                           check=False, timeout=600)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert json.loads((recorded / "smoke" / "gpu_check.json").read_text())["partial"] is True
    assert {path.name: path.read_bytes() for path in recorded.iterdir() if path.is_file()} == before


def test_troubleshooting_lists_every_message_of_these_faults():
    page = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    messages = [
        "a FIFO (named pipe), not an image file; left unopened",
        "with the .partial journal and temporary files made beside it, names of at most M bytes fit",
        "the disk is full (N KiB free in DIR; the --out needs about M KiB); free some space or write elsewhere",
        "the file is immutable or append-only (lsattr shows it); it cannot be replaced",
        "another realness run is writing it (pid N, started DATE: COMMAND); wait for it to finish, or choose another --out",
        "FILE: cannot write it (No space left on device)",
        "saved by a different run (other images, model or settings), so its rows are not this run's",
        "has no journal (FILE.partial) proving its rows are this run's; doing all N again",
        "no answer within the time budget of S s",
        "only for describers that call a server (openai:...)",
        "not with --engine ray yet; use --engine local",
        "N retries; last: IMAGE: PROBLEM",
    ]
    assert [message for message in messages if message not in page] == []
