"""One self-contained HTML page for a ``filter`` or ``compare`` run: thumbnails, scores, maps, chart.

Everything the page shows is inside it (images as base64 data URIs, charts as inline SVG, CSS
inline, no script, no font or stylesheet to fetch), so it opens offline and survives being
mailed or moved. Thumbnails are JPEG at most :data:`THUMBNAIL_SIDE` pixels on their long side.

The filter page opens with a summary (kept / dropped / failed, the score histogram with the cut
line, a link down to the cut in the ranking, the colour scale of the maps); the compare page
with each generator's score distribution and the pairwise differences with their 95 % intervals.
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

from realness.evaluation.plotting import CMAP, COLORS
from realness.io.atomic import write_text_atomic
from realness.workflows.selection_results import format_p, format_value

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
th{background:#f0f0f3;font-weight:600;position:sticky;top:0;z-index:1}
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
.summary{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start;background:#fff;border:1px solid #e3e3e3;
border-radius:6px;padding:14px 18px;margin-bottom:18px}
.counts{display:flex;gap:18px}.count{min-width:64px}.count b{display:block;font-size:26px;line-height:1.1}
.count span{font-size:12px;color:#666}.count.kept b{color:#2e6da4}.count.dropped b{color:#777}.count.failed b{color:#b00020}
.summary .rule{font-size:13px;color:#444;margin-top:10px}
a.jump{display:inline-block;margin-top:10px;font-size:14px;font-weight:600;color:#2e6da4}
svg.chart text{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:11px;fill:#444}
.legend{font-size:12px;color:#444;max-width:300px}.legend svg{display:block;margin:4px 0}
.histograms{display:flex;gap:18px;flex-wrap:wrap}.histograms figure{margin:0}
.histograms figcaption{font-size:13px;font-weight:600}
td.sig{font-weight:600}
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
    min_score: float | None = None,
) -> str:
    """The page of a ``filter`` run: a summary, then every image ranked best first, the kept / dropped line,
    maps where computed.

    The summary counts the kept, dropped and failed images, draws the score histogram (kept and
    dropped stacked) with the cut line, links down to the cut, and gives the maps' colour scale.

    Args:
        result: The ranking (every image, kept or not, unscored ones last).
        maps: Realness maps by image path (as ``str(path)``), shown beside their image in
            :data:`~realness.evaluation.plotting.CMAP`, scaled within each image.
        title: The page title.
        rule: What decided the kept images (e.g. ``"score >= 0.5, top 10"``), shown on the line.
        min_score: The threshold, drawn as the cut line; without it the line is drawn between
            the lowest kept and the highest dropped score.
    """
    maps = maps or {}
    kept = sum(1 for image in result.images if image.kept)
    columns = 7 if maps else 6
    rows = []
    cut_drawn = False
    map_header = "<th>realness map (colour scale above)</th>" if maps else ""
    for image in result.images:
        if not image.kept and not cut_drawn:
            cut_drawn = True
            rows.append(
                f'<tr class="cut" id="cut"><td colspan="{columns}">kept above ({kept}), dropped below'
                f"{' — ' + html.escape(rule) if rule else ''} · <a href=\"#top\">back to the summary</a></td></tr>"
            )
        realness_map = maps.get(str(image.path))
        map_cell = f"<td>{_img(realness_map.overlay(alpha=1.0, colorbar=False)) if realness_map else ''}</td>" if maps else ""
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
        rows.append(f'<tr class="cut" id="cut"><td colspan="{columns}">every image kept{" — " + html.escape(rule) if rule else ""}</td></tr>')
    body = (
        f'<h1 id="top">{html.escape(title)}</h1>'
        f'<div class="meta">{kept} kept of {len(result.images)} images · {_now()} · higher score = more real</div>'
        + _filter_summary(result, rule=rule, min_score=min_score, maps=bool(maps))
        + "<table><tr><th>rank</th><th>image</th>"
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
    parts.append(_distributions(result.candidates, [summary.model for summary in summaries]))
    parts.append(_pairwise(result))
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


def _filter_summary(result: FilterResult, *, rule: str, min_score: float | None, maps: bool) -> str:
    """The box at the top of the filter page: counts, the histogram with the cut, the jump, the maps' scale."""
    kept = [image.score for image in result.images if image.kept]
    failed = sum(1 for image in result.images if image.error or image.rank is None)
    dropped = [image.score for image in result.images if not image.kept and not image.error and image.rank is not None]
    counts = "".join(
        f'<div class="count {name}"><b>{count}</b><span>{name}</span></div>'
        for name, count in (("kept", len(kept)), ("dropped", len(dropped)), ("failed", failed))
    )
    cut, label = _cut_line(kept, dropped, min_score)
    where = "jump to the cut in the ranking" if dropped or failed else "jump to the end of the ranking"
    parts = [
        '<section class="summary" id="summary"><div>',
        f'<div class="counts">{counts}</div>',
        f'<div class="rule">{html.escape(rule) if rule else "no threshold: every scored image kept"}</div>',
        f'<a class="jump" href="#cut">{where} ↓</a></div>',
        "<div>" + _histogram_svg({"kept": kept, "dropped": dropped}, cut=cut, cut_label=label,
                                 element_id="score-histogram", width=460, height=170) + "</div>",
    ]
    if maps:
        parts.append(_map_legend())
    parts.append("</section>")
    return "".join(parts)


def _cut_line(kept: list[float], dropped: list[float], min_score: float | None) -> tuple[float | None, str]:
    """Where the histogram's cut line goes, and its label."""
    if min_score is not None:
        return min_score, f"cut {min_score:+.2f}"
    if kept and dropped and min(kept) >= max(dropped):  # top k: between the last kept and the first dropped
        return (min(kept) + max(dropped)) / 2, "cut"
    return None, ""


def _histogram_svg(
    series: Mapping[str, Sequence[float]],
    *,
    cut: float | None = None,
    cut_label: str = "",
    element_id: str,
    width: int,
    height: int,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Scores as an inline SVG histogram, the series stacked in :data:`COLORS` order (the last grey when
    there are two, as dropped images are), with a dashed vertical line at ``cut``."""
    import numpy as np

    values = {name: [v for v in scores if not math.isnan(v)] for name, scores in series.items()}
    every = [v for scores in values.values() for v in scores]
    if not every:
        return f'<svg class="chart" id="{element_id}" width="{width}" height="40"><text x="4" y="24">no scores</text></svg>'
    low, high = value_range or (min(every + ([cut] if cut is not None else [])), max(every + ([cut] if cut is not None else [])))
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    bins = int(min(40, max(8, math.ceil(math.sqrt(len(every)) * 2))))
    step = (high - low) / bins
    if cut is not None:  # a bin edge on the cut: no bar straddles it
        low = cut - math.ceil((cut - low) / step - 1e-9) * step
        bins = max(1, math.ceil((high - low) / step - 1e-9))
        high = low + bins * step
    edges = np.linspace(low, high, bins + 1)
    counts = [np.histogram(scores, bins=edges)[0] for scores in values.values()]
    tallest = max(1, int(np.sum(counts, axis=0).max()))
    left, right, top, bottom = 34, 24, 22 if cut is not None else 8, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot_w

    colours = list(COLORS[: len(values)])
    if len(values) == 2:
        colours[1] = "#b8b8b8"
    shapes = []
    stacked = np.zeros(bins)
    for colour, name, count in zip(colours, values, counts):
        for i, n in enumerate(count):
            if n:
                y0 = top + plot_h * (1 - (stacked[i] + n) / tallest)
                shapes.append(
                    f'<rect class="bar {html.escape(name)}" x="{x(edges[i]) + 0.5:.1f}" y="{y0:.1f}" '
                    f'width="{max(1.0, x(edges[i + 1]) - x(edges[i]) - 1):.1f}" height="{plot_h * n / tallest:.1f}" fill="{colour}">'
                    f"<title>{n} {html.escape(name)}: {edges[i]:+.2f} to {edges[i + 1]:+.2f}</title></rect>"
                )
        stacked += count
    baseline = top + plot_h
    shapes.append(f'<line x1="{left}" y1="{baseline}" x2="{left + plot_w}" y2="{baseline}" stroke="#666"/>')
    for tick in np.linspace(low, high, 5):
        shapes.append(f'<line x1="{x(tick):.1f}" y1="{baseline}" x2="{x(tick):.1f}" y2="{baseline + 4}" stroke="#666"/>'
                      f'<text x="{x(tick):.1f}" y="{baseline + 16}" text-anchor="middle">{tick:+.2f}</text>')
    shapes.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{tallest}</text>'
                  f'<text x="{left - 4}" y="{baseline}" text-anchor="end">0</text>')
    shapes.append(f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">score (higher = more real)</text>')
    if cut is not None:
        shapes.append(
            f'<line class="cut" x1="{x(cut):.1f}" y1="{top - 4}" x2="{x(cut):.1f}" y2="{baseline}" stroke="{COLORS[3]}" '
            f'stroke-width="2" stroke-dasharray="5,3"/>'
            f'<text x="{x(cut):.1f}" y="{top - 8}" text-anchor="middle" style="fill:{COLORS[3]};font-weight:600">'
            f"{html.escape(cut_label)}</text>"
        )
    legend = " ".join(
        f'<tspan style="fill:{colour}">■</tspan> {html.escape(name)} ({len(values[name])})'
        for colour, name in zip(colours, values)
    ) if len(values) > 1 else ""
    if legend:
        shapes.append(f'<text x="{left}" y="{height - 4}">{legend}</text>')
    label = ", ".join(f"{len(v)} {k}" for k, v in values.items())
    return (
        f'<svg class="chart histogram" id="{element_id}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="score histogram: {html.escape(label)}"><title>score histogram: {html.escape(label)}</title>'
        + "".join(shapes) + "</svg>"
    )


def _map_legend(cmap: str = CMAP) -> str:
    """The maps' colour scale as an inline SVG gradient, and what its ends mean."""
    import numpy as np

    from realness.dream.render import colorize

    stops = "".join(
        f'<stop offset="{100 * v:.0f}%" stop-color="#{int(r * 255 + 0.5):02x}{int(g * 255 + 0.5):02x}{int(b * 255 + 0.5):02x}"/>'
        for v, (r, g, b) in zip(np.linspace(0, 1, 11), colorize(np.linspace(0, 1, 11), cmap))
    )
    return (
        '<div class="legend" id="map-legend"><b>realness map colours</b>'
        f'<svg class="chart" width="260" height="34" viewBox="0 0 260 34" role="img" aria-label="map colour scale">'
        f'<defs><linearGradient id="map-scale">{stops}</linearGradient></defs>'
        '<rect x="0" y="0" width="260" height="16" fill="url(#map-scale)" stroke="#999"/>'
        '<text x="0" y="30">0 least real</text><text x="260" y="30" text-anchor="end">1 most real</text></svg>'
        f"Each map ({html.escape(cmap)}) is scaled within its own image: dark regions are the least real of that image, "
        "light ones the most real. Compare regions within a map, not colours across maps.</div>"
    )


def _distributions(candidates: Sequence[Candidate], models: Sequence[str]) -> str:
    """One histogram per generator, on a shared score axis."""
    scores = {model: [c.score for c in candidates if c.model == model and not math.isnan(c.score)] for model in models}
    every = [s for values in scores.values() for s in values]
    if not every:
        return ""
    shared = (min(every), max(every))
    figures = "".join(
        f"<figure><figcaption>{html.escape(model)} ({len(values)})</figcaption>"
        + _histogram_svg({model: values}, element_id=f"histogram-{index}", width=300, height=150, value_range=shared,
                         cut=sum(values) / len(values) if values else None,
                         cut_label=f"mean {sum(values) / len(values):+.2f}" if values else "")
        + "</figure>"
        for index, (model, values) in enumerate(scores.items())
    )
    return f'<h2>Score distributions</h2><div class="histograms" id="score-histograms">{figures}</div>'


def _pairwise(result: SelectionResult | FolderComparison) -> str:
    """The pairwise differences of mean score with their 95 % intervals: a table and an interval plot."""
    from realness.workflows.selection import SelectionResult

    if isinstance(result, SelectionResult):
        if not result.comparisons:
            return ""
        rows = [(f"{c.first} − {c.second}", c.pairs, c.mean_difference, c.ci_low, c.ci_high,
                 format_value(c.first_win_rate, percent=True), c.p_value, c.significant) for c in result.comparisons]
        heading = ("<th>first − second</th><th>pairs</th><th>mean difference [95% CI]</th><th>first wins</th>"
                   f"<th>Wilcoxon p{' (Holm)' if len(rows) > 1 else ''}</th>")
        note = "Paired by prompt: each difference is over the prompts both generators have a scored output for."
    else:
        rows = [(f"{result.first.model} − {result.second.model}", None, result.mean_difference, result.ci_low,
                 result.ci_high, None, result.p_value, result.significant)]
        heading = "<th>first − second</th><th>mean difference [95% CI]</th><th>Mann-Whitney p</th>"
        note = "Unpaired: the folders' images are compared as two distributions."
    table = [f'<table id="pairwise-table"><tr>{heading}</tr>']
    for name, pairs, mean, ci_low, ci_high, wins, p, significant in rows:
        cells = [f"<td>{html.escape(name)}</td>"]
        if pairs is not None:
            cells.append(f'<td class="num">{pairs}</td>')
        cells.append(f'<td class="num{" sig" if significant else ""}">{_score(mean)} [{_score(ci_low)}, {_score(ci_high)}]</td>')
        if wins is not None:
            cells.append(f'<td class="num">{wins}</td>')
        cells.append(f'<td class="num">{format_p(p)}</td>')
        table.append("<tr>" + "".join(cells) + "</tr>")
    table.append("</table>")
    plot = _intervals_svg([(name, mean, low, high, significant) for name, _, mean, low, high, _, _, significant in rows])
    return (f'<h2 id="pairwise">Pairwise differences</h2><div class="meta">{note} Positive: the first looks more real. '
            f"Bold: significant at p &lt; 0.05; an interval that crosses 0 cannot tell the two apart.</div>"
            + "".join(table) + plot)


def _intervals_svg(rows: Sequence[tuple[str, float, float, float, bool]]) -> str:
    """Each difference as a dot with its 95 % interval, around a line at zero."""
    finite = [v for _, mean, low, high, _ in rows for v in (mean, low, high) if not math.isnan(v)]
    if not finite:
        return ""
    reach = max(abs(v) for v in finite) * 1.1 or 1.0
    label_w, width, row_h, top = 190, 640, 26, 10
    plot_w = width - label_w - 20
    height = top + row_h * len(rows) + 44

    def x(value: float) -> float:
        return label_w + (value + reach) / (2 * reach) * plot_w

    shapes = [f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 38}" stroke="#888" stroke-dasharray="3,3"/>']
    for index, (name, mean, low, high, significant) in enumerate(rows):
        y = top + row_h * index + row_h / 2
        colour = COLORS[0] if significant else "#888"
        shapes.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{html.escape(name)}</text>')
        if not (math.isnan(low) or math.isnan(high)):
            shapes.append(f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>')
        if not math.isnan(mean):
            shapes.append(f'<circle cx="{x(mean):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"><title>{html.escape(name)}: '
                          f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]</title></circle>")
    axis_y = height - 38
    shapes.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#666"/>')
    for tick in (-reach, -reach / 2, 0.0, reach / 2, reach):
        shapes.append(f'<text x="{x(tick):.1f}" y="{axis_y + 13}" text-anchor="middle">{tick:+.2f}</text>')
    shapes.append(f'<text x="{label_w + plot_w}" y="{axis_y + 28}" text-anchor="end">mean difference (first − second), '
                  "95% interval; blue: significant</text>")
    return (f'<svg class="chart" id="difference-plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            'role="img" aria-label="mean differences with 95% intervals">' + "".join(shapes) + "</svg>")


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
