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
    # Nothing to fetch: no remote or relative resource, every picture inline.
    assert not re.search(r'(src|href)="(?!data:)', page) and "http://" not in page and "https://" not in page
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
    assert "http://" not in page and not re.search(r'(src|href)="(?!data:)', page)
    images = decoded_images(page)
    assert len(images) == 6 + 1  # every output, and the chart
    assert any(image.format == "PNG" and image.size[0] > 300 for image in images)  # the summary chart, as written
    assert page.count('class="output winner"') == 3 and page.count("★ winner") == 3
    for prompt in ("img0", "img1", "img2"):
        assert f"<h3>{prompt}</h3>" in page
    assert "![summary chart](summary.png)" in (out / "summary.md").read_text()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no headless Chromium at /usr/bin/chromium (apt-get install chromium)")
def test_filter_report_renders_in_a_browser(tiny_model_dir, tmp_path):
    _write_images(tmp_path / "images", 3)
    report = tmp_path / "report.html"
    assert main(["filter", str(tmp_path / "images"), "--top-k", "1", "--model", str(tiny_model_dir), "--device", "cpu",
                 "--report", str(report), "--no-progress"]) == 0
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={screenshot}", "--window-size=1200,900", report.as_uri()],
        check=True, capture_output=True, timeout=60,
    )
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(float)
    # The page drew: not a blank canvas, and the thumbnails' gradients put many distinct colours on it.
    assert pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
