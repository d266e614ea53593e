"""The HTML reports of ``realness filter --report`` and ``realness compare --out-dir``: self-contained, every image."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from test_workflows import _write_images

CHROMIUM = Path("/usr/bin/chromium")
DATA_URI = re.compile(r'src="data:image/(jpeg|png);base64,([A-Za-z0-9+/=]+)"')


def decoded_images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data))) for _, data in DATA_URI.findall(page)]


def test_filter_report_holds_every_image_offline(tiny_model_dir, tmp_path, capsys):
    paths = _write_images(tmp_path / "images", 3)
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    report = tmp_path / "out" / "report.html"
    code = main(["filter", str(tmp_path / "images"), "--top-k", "2", "--model", str(tiny_model_dir), "--device", "cpu",
                 "--report", str(report), "--no-progress"])
    assert code == 1  # the broken file failed; the others are ranked and reported
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    # Nothing to fetch: no remote or relative resource (in-page anchors only), every picture inline.
    assert not re.search(r'(src|href)="(?!data:|#)', page) and "http://" not in page and "https://" not in page
    thumbnails = decoded_images(page)
    assert len(thumbnails) == 3 and all(max(image.size) <= 256 for image in thumbnails)
    for path in paths:
        assert path.name in page
    assert "broken.png" in page and "failed" in page
    assert "kept above (2), dropped below — top 2" in page
    # The kept rows come before the line, the dropped and failed ones after it.
    line = page.index("kept above")
    assert page.count('<tr class="kept">', 0, line) == 2 and page.count('<tr class="dropped">', line) == 2
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # written atomically: no leftovers
    assert f"report -> {report}" in capsys.readouterr().err


def test_filter_report_maps_need_a_report(tiny_model_dir, tmp_path, capsys):
    _write_images(tmp_path / "images", 1)
    assert main(["filter", str(tmp_path / "images"), "--report-maps", "--model", str(tiny_model_dir)]) == 2
    assert "--report" in capsys.readouterr().err


def test_filter_report_with_core_maps(tmp_path):
    """--report-maps: a map thumbnail beside each image, from the bundled model."""
    source = Path(__file__).resolve().parents[1] / "examples" / "images"
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea.png", "chelsea_edited.png"):
        shutil.copy(source / name, folder / name)
    report = tmp_path / "report.html"
    assert main(["filter", str(folder), "--min-score", "-10", "--report", str(report), "--report-maps", "--device", "cpu", "--no-progress"]) == 0
    page = report.read_text(encoding="utf-8")
    assert "realness map" in page and len(decoded_images(page)) == 4  # two images, two maps


def test_compare_report_puts_outputs_side_by_side(tiny_model_dir, tmp_path):
    root = tmp_path / "outputs"
    for model, seed in (("model-a", 0), ("model-b", 1)):
        _write_images(root / model, 3, seed=seed)
    out = tmp_path / "report"
    assert main(["compare", str(root), "--out-dir", str(out), "--model", str(tiny_model_dir), "--device", "cpu", "--no-progress"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page and not re.search(r'(src|href)="(?!data:|#)', page)
    images = decoded_images(page)
    assert len(images) == 6 + 1  # every output, and the chart
    assert any(image.format == "PNG" and image.size[0] > 300 for image in images)  # the summary chart, as written
    assert page.count('class="output winner"') == 3 and page.count("★ winner") == 3
    for prompt in ("img0", "img1", "img2"):
        assert f"<h3>{prompt}</h3>" in page
    assert "![summary chart](summary.png)" in (out / "summary.md").read_text()


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="no headless Chromium at /usr/bin/chromium (apt-get install chromium)")


def chromium(page: Path, *flags: str) -> str:
    """Run headless Chromium on ``page`` with ``flags``; its stdout (the DOM under --dump-dom)."""
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={page.parent / 'chromium-profile'}",
         *flags, page.as_uri()],
        check=True, capture_output=True, text=True, timeout=90,
    )
    return done.stdout


def screenshot(page: Path, size: str = "1200,900") -> np.ndarray:
    """The page as Chromium draws it, an RGB array."""
    target = page.with_suffix(".png")
    chromium(page, f"--screenshot={target}", f"--window-size={size}")
    return np.asarray(Image.open(target).convert("RGB")).astype(float)


def pixels_near(pixels: np.ndarray, colour: str, tolerance: float = 24) -> int:
    """How many pixels are within ``tolerance`` of the hex ``colour``."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return int((np.abs(pixels - rgb).max(axis=-1) <= tolerance).sum())


@needs_chromium
def test_filter_report_renders_in_a_browser(tiny_model_dir, tmp_path):
    _write_images(tmp_path / "images", 3)
    report = tmp_path / "report.html"
    assert main(["filter", str(tmp_path / "images"), "--top-k", "1", "--model", str(tiny_model_dir), "--device", "cpu",
                 "--report", str(report), "--no-progress"]) == 0
    pixels = screenshot(report)
    # The page drew: not a blank canvas, and the thumbnails' gradients put many distinct colours on it.
    assert pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200


@needs_chromium
def test_filter_report_summary_histogram_and_cut_in_the_browser(tiny_model_dir, tmp_path):
    from realness.evaluation.plotting import COLORS

    _write_images(tmp_path / "images", 8)
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    scores, report = tmp_path / "scores.csv", tmp_path / "report.html"
    argv = ["filter", str(tmp_path / "images"), "--model", str(tiny_model_dir), "--device", "cpu", "--no-progress",
            "--out", str(scores)]
    assert main(argv) == 1  # every scored image kept; the broken one failed
    ranked = sorted(float(line.split(",")[2]) for line in scores.read_text().splitlines()[1:] if line.split(",")[2])
    threshold = (ranked[3] + ranked[4]) / 2  # four kept, four dropped
    assert main([*argv, "--resume", "--min-score", f"{threshold}", "--report", str(report)]) == 1
    dom = chromium(report, "--dump-dom")
    # The summary sits above the ranking and counts what the table holds.
    assert dom.index('id="summary"') < dom.index("<table")
    counts = dict((name, int(n)) for n, name in re.findall(r'<div class="count \w+"><b>(\d+)</b><span>(\w+)</span>', dom))
    assert counts == {"kept": 4, "dropped": 4, "failed": 1}
    # The histogram: its bars hold every scored image, kept and dropped apart, and the cut line is drawn.
    histogram = dom[dom.index('id="score-histogram"'):dom.index("</svg>", dom.index('id="score-histogram"'))]
    bars = re.findall(r'<rect class="bar (kept|dropped)".*?<title>(\d+) ', histogram)
    assert sum(int(n) for kind, n in bars if kind == "kept") == 4
    assert sum(int(n) for kind, n in bars if kind == "dropped") == 4
    assert f"cut {threshold:+.2f}" in histogram and 'class="cut"' in histogram
    # The jump link lands on the cut row, which comes after the four kept rows.
    assert 'href="#cut"' in dom and dom.count('id="cut"') == 1
    assert dom.count('<tr class="kept">', 0, dom.index('id="cut"')) == 4
    pixels = screenshot(report, "1200,700")
    assert pixels.std() > 10
    # Drawn in the first screen: the kept bars and the cut line in their colours.
    assert pixels_near(pixels, COLORS[0]) > 300, "no kept bars drawn"
    assert pixels_near(pixels, COLORS[3], tolerance=40) > 20, "no cut line drawn"


def test_filter_report_maps_are_full_colour_with_their_scale(tmp_path):
    """The map thumbnails are the colour map itself (not half-blended into the photo), with a legend."""
    import torch

    from realness.dream.render import colorize
    from realness.dream.result import RealnessMap
    from realness.workflows.filtering import rank_images
    from realness.workflows.report import filter_report

    path = _write_images(tmp_path / "images", 1, size=64)[0]
    gradient = np.linspace(0, 1, 64, dtype=np.float32)[None, :].repeat(64, axis=0)
    photo = torch.full((3, 64, 64), 0.5)  # mid grey: a blend would lift the dark end and dim the light one
    realness_map = RealnessMap(map=gradient, per_scale={}, raw=gradient, description="", name="img0", image=photo)
    page = filter_report(rank_images([path], [0.3]), maps={str(path): realness_map})
    assert 'id="map-legend"' in page and "least real" in page and "most real" in page
    thumbnail = np.asarray(decoded_images(page)[1].convert("RGB")).astype(float)
    dark, light = (colorize(np.array([v]))[0] * 255 for v in (0.0, 1.0))
    assert np.abs(thumbnail[32, 1] - dark).max() < 25 and np.abs(thumbnail[32, -2] - light).max() < 25
    # The legend's gradient runs through the same colours.
    stops = re.findall(r'stop-color="#([0-9a-f]{6})"', page)
    assert stops[0] == "".join(f"{int(c + 0.5):02x}" for c in dark)


@needs_chromium
def test_compare_report_pairwise_differences_in_the_browser(tiny_model_dir, tmp_path):
    root = tmp_path / "outputs"
    for model, seed in (("model-a", 0), ("model-b", 1), ("model-c", 2)):
        _write_images(root / model, 4, seed=seed)
    out = tmp_path / "report"
    assert main(["compare", str(root), "--out-dir", str(out), "--model", str(tiny_model_dir), "--device", "cpu", "--no-progress"]) == 0
    dom = chromium(out / "report.html", "--dump-dom")
    # Every pair's difference with its interval, as comparisons.csv has it.
    table = dom[dom.index('id="pairwise-table"'):dom.index("</table>", dom.index('id="pairwise-table"'))]
    csv_rows = (out / "comparisons.csv").read_text().splitlines()[1:]
    assert len(csv_rows) == 3 and table.count("<tr>") == 1 + 3
    for row in csv_rows:
        first, second, _, mean, low, high = row.split(",")[:6]
        assert f"{first} − {second}" in table
        assert f"{float(mean):+.3f} [{float(low):+.3f}, {float(high):+.3f}]" in table
    plot = dom[dom.index('id="difference-plot"'):dom.index("</svg>", dom.index('id="difference-plot"'))]
    assert plot.count("<circle") == 3
    assert dom.count('class="chart histogram"') == 3 and "mean " in dom  # one histogram per generator, its mean drawn
    pixels = screenshot(out / "report.html", "1200,1200")
    assert pixels.std() > 10
