"""Writing benchmark results: JSON with provenance, a markdown table, a prediction-vs-MOS scatter.

Every published number is written beside the command that produced it, the UTC date and
the hardware, so that a reader can rerun it.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realness.errors import OutputError
from realness.evaluation import stats
from realness.evaluation.plotting import COLORS, save_figure, styled_figure
from realness.io.atomic import write_text_atomic


def hardware_summary() -> dict[str, Any]:
    """Describe the machine a benchmark runs on.

    Returns:
        ``cpu`` (model name), ``cores`` (logical CPUs), ``platform``, ``python``,
        ``torch`` (version) and ``gpu`` (CUDA device name or None).
    """
    summary: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return summary


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what the platform module knows
    return platform.processor() or platform.machine() or "unknown"


def _jsonable(value: Any) -> Any:
    # JSON has no NaN or numpy types: non-finite floats become null, arrays become lists.
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_cell(item, digits) for item in value) + "]"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, *, digits: int = 4
) -> str:
    """Format rows as a GitHub-flavoured markdown table.

    Args:
        rows: one mapping per row.
        columns: the columns, in order (default: every key, in first-seen order).
        digits: decimals for floats; NaN and None show as ``-``, lists as ``[a, b]``.

    Returns:
        The table, ending with a newline.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(column), digits) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(
    out_dir: str | Path,
    name: str,
    results: Mapping[str, Any],
    *,
    command: str,
    hardware: str | None = None,
    partial: bool = False,
) -> tuple[Path, Path]:
    """Write ``{name}.json`` and ``{name}.md`` with the command, UTC date and hardware.

    A ``partial`` result (a smoke run, a subset, the wrong device) is recorded as such and
    never replaces a full one: the first full figures of a benchmark may be scarce (a GPU is
    lent to few sessions).

    The markdown shows ``results["rows"]`` (a list of mappings, e.g. one per model) as a
    table with ``results["columns"]`` as its columns when given, and every other scalar
    entry of ``results`` as a two-column table. Other entries (per-image lists) are in
    the JSON only.

    Args:
        out_dir: the folder to write into (created if needed).
        name: the file stem.
        results: the numbers; numpy values and NaN are converted (NaN -> null).
        command: the command line that produced them.
        hardware: a short description (e.g. "2-core CPU VM"); the detected
            :func:`hardware_summary` is recorded as well.
        partial: these figures are not the benchmark's full run.

    Returns:
        ``(json_path, markdown_path)``.

    Raises:
        OutputError: ``partial`` and ``{name}.json`` holds a full result.
    """
    folder = Path(out_dir)
    json_path = folder / f"{name}.json"
    if partial:
        check_partial_result(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    detected = hardware_summary()
    described = hardware or _describe(detected)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "name": name,
        "command": command,
        "date_utc": date,
        "hardware": described,
        "hardware_details": detected,
        "partial": partial,
        "results": _jsonable(results),
    }
    write_text_atomic(json_path, json.dumps(record, indent=2, allow_nan=False) + "\n")

    parts = [f"# {name}\n", f"- command: `{command}`", f"- date (UTC): {date}", f"- hardware: {described}\n"]
    rows = results.get("rows")
    if isinstance(rows, Sequence) and rows and all(isinstance(row, Mapping) for row in rows):
        parts.append(markdown_table(rows, results.get("columns")))
    scalars = [
        {"metric": key, "value": value}
        for key, value in results.items()
        if key not in ("rows", "columns") and _is_scalar(value)
    ]
    if scalars:
        parts.append(markdown_table(scalars, ["metric", "value"]))
    markdown_path = folder / f"{name}.md"
    write_text_atomic(markdown_path, "\n".join(parts))
    return json_path, markdown_path


def check_partial_result(out_dir: str | Path, name: str) -> None:
    """Refuse, before the work, a partial run whose figures would replace the full ones of ``name`` in ``out_dir``.

    Raises:
        OutputError: ``{name}.json`` there holds a full result.
    """
    json_path = Path(out_dir) / f"{name}.json"
    if _is_full_record(json_path):
        raise OutputError(
            f"{json_path}: holds a full recorded result; a smoke or partial run does not replace it "
            "(write it elsewhere with --out-dir DIR)"
        )


def _is_full_record(path: Path) -> bool:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    results = record.get("results") if isinstance(record, dict) else None
    smoke = isinstance(results, dict) and results.get("smoke") is True
    return not record.get("partial", False) and not smoke


def _is_scalar(value: Any) -> bool:
    # Short lists such as a confidence interval read well in a cell; long ones do not.
    if isinstance(value, (list, tuple)):
        return len(value) <= 4 and all(_is_scalar(item) for item in value)
    return value is None or isinstance(value, (str, bool, int, float, np.generic))


def _describe(detected: Mapping[str, Any]) -> str:
    text = f"{detected['cpu']}, {detected['cores']} logical CPUs"
    if detected.get("gpu"):
        text += f", {detected['gpu']}"
    if detected.get("torch"):
        text += f", torch {detected['torch']}"
    return text


def scatter_plot(
    pred: Sequence[float] | np.ndarray,
    mos: Sequence[float] | np.ndarray,
    path: str | Path,
    title: str,
    *,
    xlabel: str = "predicted realness",
    ylabel: str = "MOS",
) -> Path:
    """Save a PNG scatter of predictions against MOS with the fitted logistic curve.

    Non-finite pairs are left out. The legend gives SROCC and PLCC (raw and fitted), as in
    the REALM paper's Fig. 4. Drawn in :mod:`realness.evaluation.plotting`'s style on an Agg canvas, so no
    display is needed and the caller's pyplot state is untouched.

    Args:
        pred: predicted scores.
        mos: mean opinion scores.
        path: where to write the PNG (folders are created).
        title: the plot title.
        xlabel: x-axis label.
        ylabel: y-axis label.

    Returns:
        The PNG path.

    Raises:
        StatsInputError: fewer than 3 finite pairs.
    """
    pred_array, mos_array, n_excluded = stats.valid_pairs(pred, mos)
    fit = stats.logistic_fit(pred_array, mos_array)
    summary = (
        f"SROCC {stats.srocc(pred_array, mos_array):.3f}   PLCC {stats.plcc(pred_array, mos_array):.3f}"
        f" (fitted {stats.plcc_fitted(pred_array, mos_array):.3f})"
    )
    if n_excluded:
        summary += f"\n{n_excluded} skipped item(s) left out"
    with styled_figure((4.8, 4.0)) as figure:
        axes = figure.add_subplot()
        axes.scatter(pred_array, mos_array, s=14, alpha=0.7, edgecolors="none", label=f"images (n={len(pred_array)})")
        if fit.converged:
            grid = np.linspace(pred_array.min(), pred_array.max(), 200)
            axes.plot(grid, fit(grid), color=COLORS[3], linewidth=1.5, label="4-parameter logistic fit")
        axes.set_title(f"{title}\n{summary}")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(True)
        axes.legend(loc="lower right")
        figure.tight_layout()
    return save_figure(figure, path)
