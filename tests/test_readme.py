"""README.md's two set-up commands are the ones CI runs and the bundled examples exist."""

from __future__ import annotations

from conftest import REPO_ROOT
from test_snippets import doc_snippets


def _readme_commands() -> list[str]:
    block = next(s for s in doc_snippets() if s.page == "README.md" and s.language == "bash").code
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim():
    install_and_run, install_and_test = _readme_commands()[:2]
    assert "pytest" in install_and_test and "realness score examples/images" in install_and_run
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_readme_example_command_points_at_bundled_files():
    install_and_run = _readme_commands()[0]
    assert (REPO_ROOT / "examples" / "images").is_dir()
    assert (REPO_ROOT / "examples" / "descriptions.csv").is_file()
    assert "--descriptions examples/descriptions.csv" in install_and_run
