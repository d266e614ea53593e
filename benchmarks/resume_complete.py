"""``realness score --resume`` of a table that is already complete: time and peak memory against rows.

For each row count, a folder of that many small PNGs is made and its finished table is built
through realness's own writer (the same :class:`~realness.io.journal.RowJournal` and run
fingerprint ``realness score`` uses, with placeholder scores: scoring 30,000 images on a CPU
takes hours, and a resumed complete table reads none of its scores). Then, each under
``/usr/bin/time -v``:

- start-up: ``python -m realness.cli score --help`` (imports torch and builds the parser);
- resume: ``python -m realness.cli score FOLDER --out scores.csv --resume``, which must say
  ``N already there`` without loading the model or rewriting the table.

    python benchmarks/resume_complete.py --rows 3000 30000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import write_results  # noqa: E402

from realness.cli import build_parser  # noqa: E402
from realness.cli.resumable import ResumableRun, journal_for  # noqa: E402
from realness.io.files import expand_image_paths  # noqa: E402
from realness.io.schema import SCORE_COLUMNS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def finished_table(root: Path, rows: int) -> list[str]:
    """A folder of ``rows`` 8x8 PNGs and ``scores.csv``, finished by the writer ``realness score`` uses; the argv."""
    folder = root / "images"
    folder.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "img0000000.png")
    template = (folder / "img0000000.png").read_bytes()
    for index in range(1, rows):
        (folder / f"img{index:07d}.png").write_bytes(template)
    argv = ["score", str(folder), "--out", str(root / "scores.csv"), "--no-progress", "--resume"]
    args = build_parser().parse_args(argv)
    names = [str(path) for path in expand_image_paths(args.paths)]
    with ResumableRun("score", names, journal_for(args.out, SCORE_COLUMNS, args, names=names)) as run:
        for start in range(0, rows, 1000):
            run.save([{"path": name, "score": 0.0, "verdict": None, "description": None, "error": None}
                      for name in names[start : start + 1000]])
    return argv


def timed(argv: list[str], env: dict) -> dict:
    """Wall seconds and peak resident memory of ``python -m realness.cli ARGV`` under /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "realness.cli", *argv],
                          capture_output=True, text=True, env=env, check=False)
    report = done.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", report)
    hours, minutes, seconds = int(wall.group(1) or 0), int(wall.group(2)), float(wall.group(3))
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
    said = [line for line in report.splitlines() if line.startswith("realness")]
    return {"status": done.returncode, "seconds": round(hours * 3600 + minutes * 60 + seconds, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1), "said": said[-1] if said else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the median is kept")
    parser.add_argument("--out-dir", default=str(RESULTS))
    options = parser.parse_args()
    rows_out = []
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(scratch) / "cache"), "HF_HUB_OFFLINE": "1"}
        os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]  # the run record goes where the CLI will look
        for rows in options.rows:
            root = Path(scratch) / f"rows{rows}"
            argv = finished_table(root, rows)
            table = root / "scores.csv"
            before = table.stat().st_mtime_ns
            startup = sorted((timed(["score", "--help"], env) for _ in range(options.repeats)), key=lambda r: r["seconds"])
            resume = sorted((timed(argv, env) for _ in range(options.repeats)), key=lambda r: r["seconds"])
            start, again = startup[len(startup) // 2], resume[len(resume) // 2]
            assert again["status"] == 0 and f"{rows} already there" in again["said"], again
            assert table.stat().st_mtime_ns == before, "the complete table was rewritten"
            rows_out.append({
                "rows": rows, "startup_seconds": start["seconds"], "resume_seconds": again["seconds"],
                "resume_over_startup": round(again["seconds"] / start["seconds"], 2),
                "startup_peak_rss_mb": start["peak_rss_mb"], "resume_peak_rss_mb": again["peak_rss_mb"],
                "said": again["said"].replace(str(root), "ROOT"),
            })
            print(rows_out[-1], file=sys.stderr)
    write_results(
        options.out_dir, "resume_complete",
        {"rows": rows_out, "columns": ["rows", "startup_seconds", "resume_seconds", "resume_over_startup",
                                       "startup_peak_rss_mb", "resume_peak_rss_mb", "said"],
         "target": "resume under 2x start-up time; peak memory independent of the row count",
         "table": "built through RowJournal with realness score's own fingerprint (placeholder scores); "
                  "the images are 8x8 PNG files in one folder",
         "repeats": options.repeats},
        command="python benchmarks/resume_complete.py --rows " + " ".join(map(str, options.rows)),
    )


if __name__ == "__main__":
    main()
