"""pytest plugin: the ``realness_baseline`` fixture and the ``--realness-update-baseline`` option.

Installed with realness (entry point ``pytest11``), so a project's tests can write:

    def test_samples_still_look_real(realness_baseline):
        realness_baseline(generate_samples(seed=0), model="realness-core-lite")

The baseline lives beside the test file in
``realness_baselines/<test module>/<test name>.json``. The first run fails, asking for
``pytest --realness-update-baseline``, which (re)writes every baseline the run touches;
commit the JSON files. The ini option ``realness_model`` sets the default model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

UPDATE_OPTION = "--realness-update-baseline"
BASELINE_FOLDER = "realness_baselines"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--realness-update-baseline`` and the ``realness_model`` ini option."""
    group = parser.getgroup("realness")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="rewrite the realness baselines of the tests that run instead of checking them",
    )
    parser.addini("realness_model", help="default model for the realness_baseline fixture", default=None)


class RealnessBaselineCheck:
    """The callable the ``realness_baseline`` fixture returns.

    Args:
        directory: the folder of this test's baselines.
        test_name: the test's name, used as the default baseline file name.
        update: rewrite baselines instead of checking them.
        default_model: the model used when a call names none.
    """

    def __init__(self, directory: Path, test_name: str, *, update: bool, default_model: str | None):
        self.directory = directory
        self.test_name = test_name
        self.update = update
        self.default_model = default_model

    def path(self, name: str | None = None) -> Path:
        """The baseline file for ``name`` (default: the test's name).

        Args:
            name: a label for a second baseline in the same test.

        Returns:
            The JSON file path.
        """
        label = self.test_name if name is None else f"{self.test_name}-{name}"
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") + ".json")

    def __call__(self, images: Any, *, name: str | None = None, model: Any = None, **kwargs: Any) -> Any:
        """Check ``images`` against the test's stored baseline (or rewrite it).

        Args:
            images: what :func:`realness.workflows.regression.assert_realness_not_dropped` accepts.
            name: a label, to keep several baselines in one test.
            model: the realness model (default: ini ``realness_model``, else the bundled model).
            **kwargs: ``descriptions``, ``tolerance``, ``device``, ``precision``, ``batch_size``, ``progress``.

        Returns:
            The :class:`~realness.workflows.regression.RealnessComparison`.
        """
        __tracebackhide__ = True  # a failure shows the user's test and the message, not realness's source
        # local: a pytest plugin loads in every test session, so it must not import torch until used
        from realness.core.pretrained import DEFAULT_MODEL
        from realness.workflows.regression import assert_realness_not_dropped

        chosen = model if model is not None else (self.default_model or DEFAULT_MODEL)
        return assert_realness_not_dropped(images, self.path(name), model=chosen, update=self.update, **kwargs)


@pytest.fixture
def realness_baseline(request: pytest.FixtureRequest) -> RealnessBaselineCheck:
    """Assert that samples' realness did not drop against this test's stored baseline.

    Returns:
        A :class:`RealnessBaselineCheck`: call it with the samples.
    """
    test_file = Path(str(request.node.path))
    return RealnessBaselineCheck(
        test_file.parent / BASELINE_FOLDER / test_file.stem,
        request.node.name,
        update=bool(request.config.getoption(UPDATE_OPTION)),
        default_model=request.config.getini("realness_model") or None,
    )
