"""The one table module and the description cache: spreadsheet CSVs, atomic writes, cache faults.

Real files in tmp dirs and real sqlite databases.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from realness.errors import TableError
from realness.io.atomic import atomic_output
from realness.io.description_table import read_descriptions
from realness.io.names import name_list
from realness.io.tables import write_table


def write_image(path, seed=0, size=(40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def one_line_error(capsys, code, expected_code=2):
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_an_interrupted_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    out = tmp_path / "scores.csv"
    write_table([{"name": "a", "score": 1.0}], out, ["name", "score"])
    before = out.read_bytes()
    with pytest.raises(KeyboardInterrupt), atomic_output(out) as handle:
        handle.write("name,score\nhalf")
        raise KeyboardInterrupt
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_spreadsheet_csvs_just_work_or_fail_by_name(tmp_path):
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufeffImage;x,Caption\r\nphotos/a.png,Yes. Six fingers.\r\n".replace(";x", "").encode("utf-8"))
    assert read_descriptions(bom).texts == {"photos/a.png": "Yes. Six fingers."}

    utf16 = tmp_path / "unicode.csv"
    utf16.write_bytes("File,Text\r\na.png,Café lights.\r\n".encode("utf-16"))
    assert read_descriptions(utf16).texts == {"a.png": "Café lights."}

    legacy = tmp_path / "cp1252.csv"
    legacy.write_bytes("filename,description\na.png,Caf\u00e9 sign.\n".encode("cp1252"))
    with pytest.raises(TableError, match=r"cp1252.csv: not UTF-8 text \(byte 30: .*re-save it as 'CSV UTF-8'"):
        read_descriptions(legacy)

    other = tmp_path / "other.csv"
    other.write_text("picture,notes\na.png,x\n")
    with pytest.raises(TableError) as error:
        read_descriptions(other)
    assert str(error.value) == f"{other}: no image column (looked for path, file, filename, file_name, image, image_path, name); found: picture, notes"

    duplicated = tmp_path / "dup.csv"
    duplicated.write_text("filename,description\na.png,No.\nb.png,No.\na.png,Yes. Blur.\nb.png,No.\n")
    with pytest.raises(TableError, match=r"1 images are listed more than once with different descriptions: a.png \(lines 2, 4\)"):
        read_descriptions(duplicated)


def test_name_lists_stop_after_a_few_names():
    assert name_list(["a", "b"]) == "a, b"
    assert name_list([f"f{i}" for i in range(12)]) == "f0, f1, f2, f3, f4 and 7 more"


# --- the description cache ------------------------------------------------------------------------


class PixelDescriber:
    """Describes an image by its mean pixel value, so a stale cache answer is visible."""

    @staticmethod
    def build():
        from realness.describers import BaseDescriber, Description

        class ByMean(BaseDescriber):
            def describe_tensors(self, images, names):
                return [Description.success(n, f"Somewhat. Mean {float(i.mean()):.4f}.", self.model, self.prompt.id)
                        for i, n in zip(images, names)]

        return ByMean("by-mean")


def test_a_rewritten_image_with_its_size_and_mtime_restored_is_described_afresh(tmp_path):
    from realness.describers import CachedDescriber, DescriptionCache

    image = write_image(tmp_path / "photo.png", seed=1)
    describer = CachedDescriber(PixelDescriber.build(), DescriptionCache(tmp_path / "cache.sqlite3"))
    first = describer.describe(str(image))[0].text
    status = image.stat()
    # Other pixels, same size (PNG of the same noise shape), then the mtime put back as `cp -p` does.
    replacement = write_image(tmp_path / "other.png", seed=2)
    data = replacement.read_bytes()
    assert len(data) == status.st_size
    image.write_bytes(data)
    os.utime(image, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert (image.stat().st_size, image.stat().st_mtime_ns) == (status.st_size, status.st_mtime_ns)
    second = describer.describe(str(image))[0]
    assert second.text != first and second.text == describer.describer.describe(str(replacement))[0].text


def test_a_garbage_cache_file_is_an_error_naming_it(tmp_path, capsys):
    from realness.describers import DescriptionCache
    from realness.describers.cache import CacheError

    garbage = tmp_path / "cache.sqlite3"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match=rf"{garbage}: not a usable description cache .*delete it"):
        DescriptionCache(garbage)
    pytest.importorskip("openai")
    image = write_image(tmp_path / "a.png")
    # The cache is opened before any request: the server address is never used.
    describer = "openai:fake-vlm@http://127.0.0.1:9/v1"
    code = main(["describe", str(image), "--describer", describer, "--description-cache", str(garbage), "--no-progress"])
    err = one_line_error(capsys, code)
    assert err.startswith(f"realness describe: {garbage}: not a usable description cache")


def test_a_read_only_cache_degrades_to_uncached_with_one_warning(tmp_path, monkeypatch):
    import sqlite3

    from realness.describers import CachedDescriber, DescriptionCache

    images = [str(write_image(tmp_path / f"{i}.png", seed=i)) for i in range(3)]
    path = tmp_path / "cache.sqlite3"
    DescriptionCache(path)
    # sqlite's own read-only mode: what a read-only file or mount gives (and root is not exempt from).
    monkeypatch.setattr(DescriptionCache, "_connect", lambda self: sqlite3.connect(f"file:{self.path}?mode=ro", uri=True))
    describer = CachedDescriber(PixelDescriber.build(), DescriptionCache(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = [d.text for d in describer.describe(images)]
        texts_again = [d.text for d in describer.describe(images)]
    assert [str(w.message) for w in caught if "read-only" in str(w.message)] == [
        (
            f"{path}: the description cache is read-only, so new descriptions are not stored in it this run; "
            "point --description-cache (or REALNESS_CACHE_DIR) at a writable place"
        )
    ]
    assert texts == texts_again and all(t.startswith("Somewhat. Mean") for t in texts)


def test_a_writer_failing_halfway_leaves_the_previous_figure(tmp_path):
    from realness.io.atomic import write_file_atomic

    target = tmp_path / "summary.png"
    target.write_bytes(b"previous figure")

    def broken_writer(handle):
        handle.write(b"\x89PNG half a figure")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file_atomic(target, broken_writer)
    assert target.read_bytes() == b"previous figure"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.png"]
    assert write_file_atomic(target, lambda handle: handle.write(b"new")) == target
    assert target.read_bytes() == b"new" and oct(target.stat().st_mode & 0o777) != "0o600"
