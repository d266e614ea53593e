"""Nothing lost, nothing mixed up: users' files, outputs and descriptions under every fault.

Real files in tmp dirs and the real CLI entry point (``realness.cli.main``); the
interruption tests run ``python -m realness.cli`` in a subprocess and send it a real SIGINT.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from realness.errors import DescriptionsWarning
from realness.io.tables import read_table


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def one_line_error(capsys, code: int, expected_code: int = 2) -> str:
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- outputs are never destructive -----------------------------------------------------------


def test_score_refuses_an_out_that_is_an_input_before_any_work(tmp_path, capsys):
    victim = write_image(tmp_path / "victim.png")
    other = write_image(tmp_path / "z.png", seed=1)
    before = victim.read_bytes()
    # --model names nothing that exists: refusing before any work means it is never looked at.
    code = main(["score", str(victim), str(other), "--out", str(victim), "--model", str(tmp_path / "no-model")])
    err = one_line_error(capsys, code)
    assert err.startswith(f"realness score: {victim}: --out is also an input")
    assert victim.read_bytes() == before


def test_score_refuses_a_descriptions_table_as_out_and_a_directory_as_out(tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    table = tmp_path / "d.csv"
    table.write_text("filename,description\na.png,No.\n")
    code = main(["score", str(image), "--descriptions", str(table), "--out", str(table), "--model", "nowhere"])
    assert "--out is also an input" in one_line_error(capsys, code)
    assert table.read_text() == "filename,description\na.png,No.\n"
    code = main(["score", str(image), "--out", str(tmp_path), "--model", "nowhere"])
    assert "is a directory" in one_line_error(capsys, code)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "realness score: --batch-size: must be at least 1, not 0"),
        (["--descriptions", "{tmp}/missing.csv"], "realness score: {tmp}/missing.csv: no such file"),
        (["--resume"], "realness score: --resume: needs --out, the file to continue"),
    ],
)
def test_score_user_mistakes_are_one_line_exit_2(tmp_path, capsys, argv, message):
    image = write_image(tmp_path / "a.png")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    code = main(["score", str(image), *argv, "--model", "nowhere"])
    assert one_line_error(capsys, code) == message.replace("{tmp}", str(tmp_path))


def test_score_out_into_a_missing_folder_creates_it(tiny_model_dir, tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    out = tmp_path / "new" / "deeper" / "scores.json"
    assert main(["score", str(image), "--out", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())
    assert [row["path"] for row in rows] == [str(image)] and isinstance(rows[0]["score"], float)
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.json"]  # no temporary or journal left


def test_filter_export_into_the_source_folder_loses_nothing(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "gen"
    originals = {p: p.read_bytes() for p in (write_image(folder / f"img{i}.png", seed=i) for i in range(4))}
    code = main(["filter", str(folder), "--top-k", "2", "--export", str(folder), "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and "exported 0 images" in err and "2 already there" in err
    assert {p: p.read_bytes() for p in folder.iterdir()} == originals


def test_filter_export_never_replaces_a_file_it_did_not_create(tiny_model, tmp_path):
    from realness.core import RealnessScorer
    from realness.workflows.filtering import ExportError, filter_images

    folder = tmp_path / "gen"
    for i in range(3):
        write_image(folder / f"img{i}.png", seed=i)
    result = filter_images(folder, model=RealnessScorer(tiny_model, device="cpu"))
    kept = tmp_path / "kept"
    in_the_way = write_image(kept / result.kept[0].path.name, seed=99)
    mine = in_the_way.read_bytes()
    with pytest.raises(ExportError, match=r"1 files are in the way .*img\d\.png.*never replaces"):
        result.export(kept)
    assert in_the_way.read_bytes() == mine
    assert sorted(p.name for p in kept.iterdir()) == [in_the_way.name]  # nothing else was placed either
    in_the_way.unlink()
    assert len(result.export(kept)) == 3
    assert result.export(kept) == []  # identical copies are left alone on a re-run


# --- descriptions keyed by the path the user gave ----------------------------------------------


def test_same_file_names_in_two_folders_get_their_own_descriptions(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a" / "img.png", seed=1)
    write_image(tmp_path / "b" / "img.png", seed=2)
    table = tmp_path / "d.csv"
    # What `realness describe a/img.png b/img.png --out d.csv` writes: the paths as given.
    table.write_text("filename,MOS,description\na/img.png,,Yes. A hand with six fingers.\nb/img.png,,No.\n")
    code = main(["score", "a/img.png", "b/img.png", "--descriptions", str(table), "--out", "s.csv",
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(tmp_path / "s.csv")
    assert [(r["path"], r["description"]) for r in rows] == [
        ("a/img.png", "Yes. A hand with six fingers."),
        ("b/img.png", "No."),
    ]


def test_a_bare_file_name_two_images_share_is_reported_not_guessed(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a" / "img.png", seed=1)
    write_image(tmp_path / "b" / "img.png", seed=2)
    write_image(tmp_path / "b" / "solo.png", seed=3)
    table = tmp_path / "bare.csv"
    table.write_text("filename,description\nimg.png,No.\nsolo.png,Somewhat. Odd shadow.\ngone.png,No.\n")
    code = main(["score", "a", "b", "--descriptions", str(table), "--out", "s.csv",
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = {r["path"]: r["description"] for r in read_rows(tmp_path / "s.csv")}
    assert rows == {"a/img.png": "", "b/img.png": "", "b/solo.png": "Somewhat. Odd shadow."}
    assert "2 images share a file name its rows cannot tell apart" in err and "a/img.png, b/img.png" in err
    assert "1 rows match no image: gone.png" in err


def test_filter_images_matches_keys_relative_to_the_folder_and_warns_about_the_rest(tiny_model, tmp_path):
    from realness.core import RealnessScorer
    from realness.workflows.filtering import filter_images

    write_image(tmp_path / "gen" / "sub" / "x.png", seed=1)
    write_image(tmp_path / "gen" / "y.png", seed=2)
    with pytest.warns(DescriptionsWarning) as caught:
        result = filter_images(
            tmp_path / "gen",
            descriptions={"sub/x.png": "No.", "sub/typo.png": "Yes. Blurry."},
            model=RealnessScorer(tiny_model, device="cpu"),
        )
    by_name = {image.path.name: image.description for image in result.images}
    assert by_name == {"x.png": "No.", "y.png": None}
    messages = [str(w.message) for w in caught]
    assert any("no description for 1 of 2 images" in m and "y.png" in m for m in messages)
    assert any("1 rows match no image: sub/typo.png" in m for m in messages)


def test_every_table_reader_shares_the_spreadsheet_rules(tmp_path):
    from realness.data import load_csv

    write_image(tmp_path / "a.png")
    sheet = tmp_path / "ratings.csv"
    sheet.write_bytes("\ufefffilename,MOS\r\na.png,1.5\r\n".encode("utf-8"))
    assert load_csv(sheet).mos.tolist() == [1.5]
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("filename,MOS,description\na.png,1,Caf\u00e9\n".encode("cp1252"))
    with pytest.raises(Exception, match="byte"):
        load_csv(legacy)
    assert read_table(sheet).columns == ["filename", "MOS"]


# --- folder scans ---------------------------------------------------------------------------


def test_folder_scans_follow_symlinks_once_and_report_what_they_skip(tmp_path):
    from realness.cli.common import expand_image_paths

    outside = tmp_path / "outside"
    write_image(outside / "behind_link.png")
    root = tmp_path / "root"
    write_image(root / "here.png")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.png").symlink_to(tmp_path / "nothing.png")
    skipped: list = []
    found = expand_image_paths([str(root)], skipped)
    assert [p.relative_to(root).as_posix() for p in found] == ["here.png", "linked/behind_link.png"]
    reasons = dict(skipped)
    assert "broken symbolic link" in reasons[str(root / "dangling.png")]
    assert "symbolic link loop" in reasons[str(root / "loop")]


# --- photos -------------------------------------------------------------------------------


def test_exif_orientation_6_is_applied_before_scoring(tiny_model):
    """A portrait phone photo (stored sideways, EXIF orientation 6) is scored upright."""
    import io

    import torch

    from realness.core import RealnessScorer
    from realness.io.inputs import load_image

    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)  # landscape pixels as the sensor saw them
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    data = buffer.getvalue()
    loaded = load_image(data)
    assert tuple(loaded.shape) == (3, 96, 48)  # portrait, as every photo viewer shows it
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # pixels without the EXIF turn
    upright = np.rot90(decoded, k=-1).copy()  # orientation 6: 90 degrees clockwise
    assert torch.equal(loaded, torch.from_numpy(upright).permute(2, 0, 1).float() / 255)
    scorer = RealnessScorer(tiny_model, device="cpu")
    with_exif, by_hand, sideways = scorer([data, upright, decoded], ["No."] * 3).scores.tolist()
    assert with_exif == pytest.approx(by_hand, abs=1e-6)
    assert with_exif != pytest.approx(sideways, abs=1e-6)


# --- Ctrl-C and resume --------------------------------------------------------------------------


def make_folder_with_bad_files(folder: Path, count: int, bad_share: float = 0.05, seed: int = 0) -> list[str]:
    """``count`` small images, ``bad_share`` of them broken in the ways real folders are."""
    rng = random.Random(seed)
    bad = set(rng.sample(range(count), round(count * bad_share)))
    folder.mkdir(parents=True)
    for index in range(count):
        path = folder / f"img{index:04d}.png"
        if index in bad:
            kind = index % 4
            if kind == 0:
                path.write_bytes(b"")  # empty
            elif kind == 1:
                path.write_bytes(b"this is not an image")
            elif kind == 2:
                write_image(path, seed=index, size=(24, 24))
                path.write_bytes(path.read_bytes()[:60])  # truncated
            else:
                write_image(path, seed=index, size=(4, 4))  # below the model's smallest size
        else:
            write_image(path, seed=index, size=(24, 24))
    return sorted(str(p) for p in folder.iterdir())


def score_command(folder: Path, model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "realness.cli", "score", str(folder), "--model", str(model_dir), "--device", "cpu",
            "--batch-size", "8", "--out", str(out), *extra]


def quiet_env() -> dict:
    # One thread per process: two cores are shared with the rest of the suite.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def start_interruptible(command: list[str], **popen_args) -> subprocess.Popen:
    """Start ``command`` with Ctrl-C at its default: a shell starts background jobs (``cmd &``, as CI
    may run the suite) with SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    return subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen_args)


def journal_rows(out: Path) -> int:
    journal = out.with_name(out.name + ".partial")
    try:
        return max(journal.read_bytes().count(b"\n") - 1, 0)  # the first line records the run
    except FileNotFoundError:
        return -1


def interrupt_after(command: list[str], out: Path, rows: int) -> subprocess.CompletedProcess:
    """Start ``command`` and send it SIGINT (Ctrl-C) once its journal holds ``rows`` rows."""
    process = start_interruptible(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=quiet_env())
    deadline = time.monotonic() + 300
    while journal_rows(out) < rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def check_table(out: Path, images: list[str]) -> dict[str, dict]:
    rows = read_rows(out)
    names = [row["path"] for row in rows]
    assert len(names) == len(set(names)), "a row appears twice"
    assert set(names) <= set(images)
    for row in rows:
        assert (row["score"] == "") == (row["error"] != ""), row  # every row is a score or a named error
    return {row["path"]: row for row in rows}


def run_interrupted_and_resumed(tmp_path: Path, model_dir: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    folder = tmp_path / "images"
    images = make_folder_with_bad_files(folder, count, seed=seed)
    clean_out = tmp_path / "clean.csv"
    clean = subprocess.run(score_command(folder, model_dir, clean_out), check=False, capture_output=True, text=True, env=quiet_env())
    assert clean.returncode == 1, clean.stderr  # the bad files failed, everything else was scored
    expected = check_table(clean_out, images)
    assert len(expected) == count

    out = tmp_path / "scores.csv"
    done = 0
    for attempt in range(3):
        # A random point between the first row past the rows already done and 60% of the rest.
        target = done + 1 + rng.randrange(max(1, (count - done) * 6 // 10))
        command = score_command(folder, model_dir, out, *(["--resume"] if attempt else []))
        interrupted = interrupt_after(command, out, target)
        assert interrupted.returncode == 130, interrupted.stderr.decode()
        assert b"Traceback" not in interrupted.stderr, interrupted.stderr.decode()[-3000:]
        assert b"run it again with --resume" in interrupted.stderr
        assert out.with_name(out.name + ".partial").exists()  # kept for --resume
        rows = check_table(out, images)
        assert len(rows) >= target > done
        done = len(rows)
    final = subprocess.run(score_command(folder, model_dir, out, "--resume"), check=False, capture_output=True, text=True, env=quiet_env())
    assert final.returncode == 1 and "Traceback" not in final.stderr, final.stderr
    assert f"{done} already there" in final.stderr
    rows = check_table(out, images)
    assert sorted(rows) == images  # exactly one row per image
    assert [row["path"] for row in read_rows(out)] == images  # in the order of the folder scan
    for name, row in rows.items():
        assert bool(row["error"]) == bool(expected[name]["error"]), name
        if row["score"]:
            assert float(row["score"]) == pytest.approx(float(expected[name]["score"]), abs=1e-5), name


def test_ctrl_c_keeps_every_scored_row_and_resume_finishes_the_rest(tiny_model_dir, tmp_path):
    run_interrupted_and_resumed(tmp_path, tiny_model_dir, count=120, seed=1)


@pytest.mark.slow
def test_fault_injection_1000_images_three_interrupts(tiny_model_dir, tmp_path):
    run_interrupted_and_resumed(tmp_path, tiny_model_dir, count=1000, seed=2)


def test_a_run_killed_without_warning_is_resumed_from_its_journal(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "images"
    images = make_folder_with_bad_files(folder, 40, seed=3)
    out = tmp_path / "scores.csv"
    process = subprocess.Popen(score_command(folder, tiny_model_dir, out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=quiet_env())
    while journal_rows(out) < 9 and process.poll() is None:
        time.sleep(0.002)
    process.kill()  # SIGKILL: no chance to finish the output
    process.wait()
    assert journal_rows(out) >= 8
    # Starting over by accident would throw the journal away: refused, one line, exit 2.
    code = main(["score", str(folder), "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out)])
    assert "left by an interrupted run; add --resume" in one_line_error(capsys, code)
    code = main(["score", str(folder), "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out), "--resume"])
    assert code == 1  # the bad files
    assert sorted(check_table(out, images)) == images


# --- model directories that fail by name ---------------------------------------------------------


def test_a_truncated_weights_file_is_a_one_line_error_naming_it(tiny_model_dir, tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    weights = tiny_model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "scores.csv"
    code = main(["score", str(image), "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out)])
    err = one_line_error(capsys, code)
    assert err.startswith(f"realness score: {weights}: unreadable weights") and "truncated or corrupt" in err
    # Nothing was scored, so nothing is left to be mistaken for an interrupted run.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "tiny-model"]


def test_a_cut_short_config_is_a_one_line_error_naming_it(tiny_model_dir, tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    config = tiny_model_dir / "config.json"
    config.write_text(config.read_text()[:40])
    code = main(["score", str(image), "--model", str(tiny_model_dir), "--device", "cpu"])
    assert one_line_error(capsys, code).startswith(f"realness score: {config}: not a readable config.json")


def test_unknown_config_fields_are_named_in_a_warning_and_ignored(tiny_model_dir, tmp_path):
    from realness.core import CoreModel

    config = tiny_model_dir / "config.json"
    data = json.loads(config.read_text())
    data["future_option"] = 3
    data["image_encoder"]["sharpen"] = True
    config.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"config.json: ignoring fields .* does not know: future_option, image_encoder.sharpen"):
        model = CoreModel.from_pretrained(tiny_model_dir)
    assert model.trained


# --- a broken torchvision ---------------------------------------------------------------------


BROKEN_TORCHVISION_CHECK = """
import sys
from realness.cli import main
from realness.dream.embedders import TransformersEmbedder
from realness.runtime.imports import BrokenDependencyError

try:
    TransformersEmbedder.from_pretrained(sys.argv[1])
except BrokenDependencyError as error:
    print("DREAM:", error)
sys.exit(main(["score", sys.argv[2], "--model", sys.argv[3], "--device", "cpu"]))
"""


def test_a_broken_torchvision_is_named_with_the_fix(tiny_model_dir, tmp_path):
    """What the open-clip extra did on a CPU torch: a torchvision whose compiled ops do not load."""
    from test_dream import save_tiny_clip

    clip_dir = save_tiny_clip(tmp_path / "clip")
    image = write_image(tmp_path / "a.png")
    site = tmp_path / "site"
    (site / "torchvision").mkdir(parents=True)
    (site / "torchvision" / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    (site / "torchvision-0.99.0.dist-info").mkdir()
    (site / "torchvision-0.99.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.99.0\n")
    env = {**quiet_env(), "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", BROKEN_TORCHVISION_CHECK, str(clip_dir), str(image), str(tiny_model_dir)],
                            check=False, capture_output=True, text=True, env=env, timeout=300)
    assert "DREAM: transformers cannot load the CLIP model" in result.stdout, result.stdout + result.stderr
    assert "operator torchvision::nms does not exist" in result.stdout and "pip uninstall torchvision" in result.stdout
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"realness score: transformers cannot load the encoders of {tiny_model_dir}")
