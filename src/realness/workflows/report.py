"""One self-contained HTML page for a ``filter`` or ``compare`` run: thumbnails, scores, maps, chart.

Everything the page shows is inside it (images as base64 data URIs, CSS inline, no script,
no font or stylesheet to fetch), so it opens offline and survives being mailed or moved.
Thumbnails are JPEG at most :data:`THUMBNAIL_SIDE` pixels on their long side.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from realness.io.atomic import write_text_atomic

if TYPE_CHECKING:  # annotations only
    from realness.dream.result import RealnessMap
    from realness.workflows.filtering import FilterResult
    from realness.workflows.selection import Candidate, FolderComparison, SelectionResult

#: Long side of the embedded thumbnails, in pixels.
THUMBNAIL_SIDE = 256

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#666;font-size:13px;margin-bottom:16px}
table{border-collapse:collapse;background:#fff;font-size:14px}
th,td{border-bottom:1px solid #e3e3e3;padding:6px 10px;text-align:left;vertical-align:middle}
th{background:#f0f0f3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img.thumb{max-width:220px;max-height:165px;border-radius:4px;display:block}
tr.dropped td{color:#888}tr.dropped img.thumb{opacity:.55}
tr.cut td{background:#fff4d6;color:#6b4e00;font-weight:600;text-align:center;border-bottom:2px solid #e0b640}
.verdict{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;background:#eee}
.verdict.yes{background:#fde2e1;color:#8a1c13}.verdict.somewhat{background:#fff0cc;color:#7a5600}
.verdict.no{background:#dff3e4;color:#1d6b33}
.desc{max-width:420px;font-size:13px;color:#444}
.error{color:#b00020}
.prompt{display:flex;gap:12px;flex-wrap:wrap;background:#fff;padding:10px;border-radius:6px;margin-bottom:12px;
border:1px solid #e3e3e3}
.output{width:230px;font-size:13px;padding:4px;border:3px solid transparent;border-radius:6px}
.output.winner{border-color:#2e9d4f;background:#f1fbf3}
.badge{color:#2e9d4f;font-weight:700}
img.chart{max-width:720px;background:#fff;border:1px solid #e3e3e3}
ul.verdicts{font-size:14px}
"""


def image_data_uri(source: Any, *, max_side: int = THUMBNAIL_SIDE) -> str | None:
    """A JPEG thumbnail of ``source`` (a path or a PIL image) as a ``data:`` URI; None if it cannot be read."""
    try:
        image = source if isinstance(source, Image.Image) else Image.open(source)
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_data_uri(path: str | os.PathLike, mime: str = "image/png") -> str:
    """A file's bytes as a ``data:`` URI (the chart, embedded as it is)."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def filter_report(
    result: FilterResult,
    *,
    maps: Mapping[str, RealnessMap] | None = None,
    title: str = "realness filter",
    rule: str = "",
) -> str:
    """The page of a ``filter`` run: every image ranked best first, the kept / dropped line, maps where computed.

    Args:
        result: The ranking (every image, kept or not, unscored ones last).
        maps: Realness maps by image path (as ``str(path)``), shown beside their image.
        title: The page title.
        rule: What decided the kept images (e.g. ``"score >= 0.5, top 10"``), shown on the line.
    """
    maps = maps or {}
    kept = sum(1 for image in result.images if image.kept)
    rows = []
    cut_drawn = False
    map_header = "<th>realness map (dark = less real)</th>" if maps else ""
    for image in result.images:
        if not image.kept and not cut_drawn:
            cut_drawn = True
            rows.append(
                f'<tr class="cut"><td colspan="{7 if maps else 6}">kept above ({kept}), dropped below'
                f"{' — ' + html.escape(rule) if rule else ''}</td></tr>"
            )
        realness_map = maps.get(str(image.path))
        map_cell = f"<td>{_img(realness_map.overlay(colorbar=False)) if realness_map else ''}</td>" if maps else ""
        status = "kept" if image.kept else ("failed" if image.error else "dropped")
        detail = f'<span class="error">{html.escape(image.error)}</span>' if image.error else html.escape(image.description or "")
        rows.append(
            f'<tr class="{"kept" if image.kept else "dropped"}">'
            f'<td class="num">{image.rank if image.rank is not None else "–"}</td>'
            f"<td>{_img(image.path)}<div>{html.escape(image.path.name)}</div></td>"
            f"{map_cell}"
            f'<td class="num">{_score(image.score)}{_interval(image.score_low, image.score_high)}</td>'
            f"<td>{_verdict(image.verdict)}</td><td class=\"desc\">{detail}</td><td>{status}</td></tr>"
        )
    if not cut_drawn and result.images:
        rows.append(f'<tr class="cut"><td colspan="{7 if maps else 6}">every image kept{" — " + html.escape(rule) if rule else ""}</td></tr>')
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f'<div class="meta">{kept} kept of {len(result.images)} images · {_now()} · higher score = more real</div>'
        "<table><tr><th>rank</th><th>image</th>"
        f"{map_header}<th>score</th><th>verdict</th><th>description</th><th>status</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return _page(title, body)


def compare_report(
    result: SelectionResult | FolderComparison,
    *,
    chart: str | os.PathLike | None = None,
    title: str = "realness compare",
) -> str:
    """The page of a ``compare`` run: the summary and chart, then each prompt's outputs side by side.

    Args:
        result: A paired selection (winners per prompt) or an unpaired folder comparison.
        chart: The summary chart (PNG), embedded.
        title: The page title.
    """
    from realness.workflows.selection import SelectionResult

    parts = [f"<h1>{html.escape(title)}</h1>", f'<div class="meta">{len(result.candidates)} images · {_now()} · higher score = more real</div>']
    summaries = result.summaries if isinstance(result, SelectionResult) else [result.first, result.second]
    parts.append("<h2>Summary</h2><table><tr><th>generator</th><th>n</th><th>mean [95% CI]</th><th>wins</th><th>skipped</th></tr>")
    for summary in summaries:
        parts.append(
            f"<tr><td>{html.escape(summary.model)}</td><td class=\"num\">{summary.n}</td>"
            f'<td class="num">{_score(summary.mean)} [{_score(summary.ci_low)}, {_score(summary.ci_high)}]</td>'
            f'<td class="num">{summary.wins if isinstance(result, SelectionResult) else "–"}</td>'
            f'<td class="num">{summary.skipped}</td></tr>'
        )
    parts.append("</table>")
    verdicts = result.verdicts() if isinstance(result, SelectionResult) else [result.verdict]
    if verdicts:
        parts.append('<ul class="verdicts">' + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts) + "</ul>")
    if chart is not None and Path(chart).is_file():
        parts.append(f'<img class="chart" alt="summary chart" src="{file_data_uri(chart)}">')
    if isinstance(result, SelectionResult):
        parts.append("<h2>Outputs by prompt (winner framed)</h2>")
        by_prompt: dict[str, list[Candidate]] = {}
        for candidate in result.candidates:
            by_prompt.setdefault(candidate.prompt_id, []).append(candidate)
        for prompt_id in sorted(by_prompt):
            winner = result.winners.get(prompt_id)
            outputs = sorted(by_prompt[prompt_id], key=lambda c: c.model)
            parts.append(f'<h3>{html.escape(prompt_id)}</h3><div class="prompt">' + "".join(_output(c, c is winner) for c in outputs) + "</div>")
    else:
        for summary in summaries:
            images = sorted((c for c in result.candidates if c.model == summary.model), key=_rank_key)
            parts.append(f"<h2>{html.escape(summary.model)} (best first)</h2><div class=\"prompt\">" + "".join(_output(c, False) for c in images) + "</div>")
    return _page(title, "".join(parts))


def write_report(path: str | os.PathLike, page: str) -> Path:
    """Write ``page`` to ``path`` atomically (a reader never sees half a page)."""
    return write_text_atomic(path, page)


def _output(candidate: Candidate, winner: bool) -> str:
    from realness.text.verdict import parse_verdict

    badge = ' <span class="badge">★ winner</span>' if winner else ""
    detail = (
        f'<div class="error">{html.escape(candidate.error)}</div>'
        if candidate.error
        else f'<div class="desc">{html.escape(candidate.description or "")}</div>'
    )
    return (
        f'<div class="output{" winner" if winner else ""}">{_img(candidate.path)}'
        f"<div><b>{html.escape(candidate.model)}</b>{badge}</div>"
        f"<div>score {_score(candidate.score)} {_verdict(parse_verdict(candidate.description))}</div>{detail}</div>"
    )


def _rank_key(candidate: Candidate) -> tuple[bool, float]:
    return (math.isnan(candidate.score), -candidate.score if not math.isnan(candidate.score) else 0.0)


def _img(source: Any) -> str:
    uri = image_data_uri(source)
    if uri is None:
        return '<span class="error">(unreadable)</span>'
    return f'<img class="thumb" alt="" src="{uri}">'


def _score(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.3f}"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f'<div class="meta">[{low:+.2f}, {high:+.2f}]</div>'


def _verdict(verdict: str | None) -> str:
    if not verdict:
        return ""
    return f'<span class="verdict {html.escape(verdict)}">{html.escape(verdict)}</span>'


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


__all__: Sequence[str] = ["THUMBNAIL_SIDE", "compare_report", "file_data_uri", "filter_report", "image_data_uri", "write_report"]
