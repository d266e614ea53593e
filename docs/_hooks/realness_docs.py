"""mkdocs hooks: undocumented API fails the build, CLI help from the real parsers, benchmark plots.

- Every public class, function, method and property of the modules the API reference renders
  (the ``::: module`` lines of ``docs/api/*.md``) must have a docstring (inherited ones count,
  as with :func:`inspect.getdoc`); each one missing is a warning, so ``--strict`` fails.
- ``<!-- cli-help: NAME -->`` in a page becomes the ``--help`` text of ``realness NAME``,
  built from ``realness.cli.NAME.register`` so the reference never drifts from the code.
- Images (``.png``, ``.svg``) in ``benchmarks/results/`` are published as ``results/<file>``,
  so ``docs/benchmarks.md`` can show them with ``![...](results/<file>)`` and
  ``mkdocs build --strict`` fails if a referenced plot is missing.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
from pathlib import Path

from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File

log = get_plugin_logger("realness-docs")
API_MARKER = re.compile(r"^:::\s*([\w.]+)\s*$", re.MULTILINE)

CLI_MARKER = re.compile(r"<!--\s*cli-help:\s*([a-z_]+)\s*-->")
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
PLOT_SUFFIXES = {".png", ".svg"}


def cli_help(name: str) -> str:
    """The ``--help`` text of ``realness NAME``, 100 columns wide."""
    parser = argparse.ArgumentParser(prog="realness")
    subparsers = parser.add_subparsers(dest="command")
    importlib.import_module(f"realness.cli.{name}").register(subparsers)
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return subparsers.choices[name].format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def undocumented(module_name: str) -> list[str]:
    """Public objects defined in ``module_name`` whose docstring is missing."""
    module = importlib.import_module(module_name)
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for member_name, member in vars(obj).items():
                function = member.fget if isinstance(member, property) else member
                if member_name.startswith("_") or not (inspect.isfunction(function) or isinstance(member, (classmethod, staticmethod))):
                    continue
                if not inspect.getdoc(getattr(obj, member_name)):
                    missing.append(f"{module_name}.{name}.{member_name}")
    return missing


def on_pre_build(config):
    api_dir = Path(config["docs_dir"]) / "api"
    modules = sorted({m for page in api_dir.glob("*.md") for m in API_MARKER.findall(page.read_text(encoding="utf-8"))})
    for module_name in modules:
        for path in undocumented(module_name):
            log.warning(f"{path} has no docstring (the API reference is generated from docstrings)")


def on_page_markdown(markdown, page, config, files):
    return CLI_MARKER.sub(lambda match: "```text\n" + cli_help(match.group(1)).rstrip() + "\n```", markdown)


def on_files(files, config):
    if RESULTS_DIR.is_dir():
        for path in sorted(RESULTS_DIR.iterdir()):
            if path.suffix.lower() in PLOT_SUFFIXES:
                files.append(
                    File(f"results/{path.name}", src_dir=str(RESULTS_DIR.parent), dest_dir=config["site_dir"],
                         use_directory_urls=config["use_directory_urls"])
                )
    return files
