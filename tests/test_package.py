"""The top-level package: every exported name resolves, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import realness


@pytest.mark.parametrize("name", realness.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(realness, name) is not None


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        realness.nope  # noqa: B018


def test_importing_realness_and_its_pytest_plugin_does_not_import_torch():
    code = "import sys, realness, realness.pytest_plugin; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_modules_that_draw_import_matplotlib_only_when_a_figure_is_drawn():
    modules = "realness.dream, realness.training.trainer, realness.workflows.selection, realness.workflows.report, realness.evaluation.plotting"
    code = f"import sys, {modules}; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
