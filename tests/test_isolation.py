"""The suite never writes into the real user cache: conftest points it at a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from realness.describers.cache import default_cache_path
from realness.io.journal import run_records_folder

_PRINT_FOLDERS = (
    "from realness.io.journal import run_records_folder; from realness.describers.cache import default_cache_path; "
    "print(run_records_folder()); print(default_cache_path())"
)


def test_run_records_and_description_cache_are_in_the_sessions_temporary_cache(_private_user_cache):
    home_cache = Path.home() / ".cache"
    for path in (run_records_folder(), default_cache_path()):
        assert path.is_relative_to(_private_user_cache), path
        assert not path.is_relative_to(home_cache), path


def test_a_cli_subprocess_inherits_the_temporary_cache(_private_user_cache):
    done = subprocess.run([sys.executable, "-c", _PRINT_FOLDERS], capture_output=True, text=True, check=True,
                          env={**os.environ}, timeout=120)
    records, descriptions = map(Path, done.stdout.split())
    assert records == run_records_folder() and records.is_relative_to(_private_user_cache)
    assert descriptions.is_relative_to(_private_user_cache)
