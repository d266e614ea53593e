"""The documentation site builds strictly, documents every module, and its hooks do their job."""

from __future__ import annotations

import importlib.util
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import realness

REPO = Path(__file__).resolve().parents[1]
HOOKS = REPO / "docs" / "_hooks" / "realness_docs.py"
needs_mkdocs = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("mkdocs", "material", "mkdocstrings_handlers")),
    reason="mkdocs, mkdocs-material or mkdocstrings[python] is not installed (pip install 'realness[docs]')",
)


def _hooks():
    spec = importlib.util.spec_from_file_location("realness_docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_mkdocs
def test_mkdocs_build_is_strictly_clean(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    warnings = [line for line in build.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert build.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or [build.stderr[-3000:]])
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    for option in ("--min-score", "--top-k", "--out-dir", "--description-cache"):
        assert option in cli  # the help text was generated from the parsers
    assert "cli-help:" not in cli


def test_every_module_is_in_the_api_reference():
    rendered = set()
    for page in (REPO / "docs" / "api").glob("*.md"):
        rendered |= set(re.findall(r"^:::\s*([\w.]+)\s*$", page.read_text(), flags=re.MULTILINE))
    modules = {
        info.name
        for info in pkgutil.walk_packages(realness.__path__, "realness.")
        if not info.ispkg and not info.name.startswith("realness.cli") and not info.name.rsplit(".", 1)[-1].startswith("_")
    }
    assert sorted(modules - rendered) == []


@needs_mkdocs
def test_hooks_find_undocumented_objects_and_render_cli_help(tmp_path, monkeypatch):
    hooks = _hooks()
    (tmp_path / "half_documented.py").write_text(
        '"""A module."""\n\n'
        "def documented():\n    '''Yes.'''\n\n"
        "def bare():\n    pass\n\n"
        "class Thing:\n    '''A thing.'''\n\n    def method(self):\n        pass\n\n"
        "    @property\n    def size(self):\n        '''Its size.'''\n        return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert hooks.undocumented("half_documented") == ["half_documented.bare", "half_documented.Thing.method"]
    page = hooks.on_page_markdown("## x\n\n<!-- cli-help: filter -->\n", None, None, None)
    assert page.startswith("## x\n\n```text\nusage: realness filter") and "--export DIR" in page
