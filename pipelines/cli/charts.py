"""Hand-built inline SVG charts and the one number formatter of the audit report and export cards.

No plotting library and no script: each function returns an ``<svg>`` string whose every label,
title and tooltip went through :func:`esc` (so a language code, a blocklist term or a URL category
taken from the data can never become markup). Charts have explicit ``width``/``height`` so they
lay out at a known size, and scale down with the page (``max-width: 100%``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

KEPT = "#3b73b9"
REMOVED = "#d1495b"
READ = "#9bb7d9"
NEUTRAL = "#6c7a89"
BAND = "#f2b134"
INK = "#222"
GRID = "#ddd"
FONT = "font-family:system-ui,sans-serif;font-size:12px"
WIDTH = 640
LABEL_CHARS = 28


# --- numbers: one formatter for the text report, the HTML page, the charts and the dataset cards ---

def fmt_int(n: Any) -> str:
    """Counts: ``20,000`` everywhere (never ``20000``); ``–`` for a missing value."""
    if n is None:
        return "–"
    return f"{int(n):,}"


def fmt_share(part: float, whole: float) -> str:
    """A share of a whole as a percentage with one decimal: ``37.0%``; ``<0.1%`` for a small non-zero part
    (never a misleading ``0.0%``); ``–`` when the whole is 0."""
    if not whole:
        return "–"
    share = 100.0 * part / whole
    return "<0.1%" if 0 < share < 0.05 else f"{share:.1f}%"


def fmt_score(x: Any) -> str:
    """Scores and thresholds: up to 4 significant digits (``0.9``, ``0.2771``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{float(x):.4g}"


def fmt_num(x: Any) -> str:
    """Any value for a table cell: counts with thousands separators, floats as scores."""
    if isinstance(x, bool) or x is None:
        return "–" if x is None else str(x)
    if isinstance(x, int):
        return fmt_int(x)
    if isinstance(x, float):
        return fmt_score(x)
    return str(x)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# --- primitives ----------------------------------------------------------------------------------

def _svg(title: str, width: int, height: int, body: list[str], desc: str = "") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="{FONT}"><title>{esc(title)}</title>'
            + (f"<desc>{esc(desc)}</desc>" if desc else "") + "".join(body) + "</svg>")


def _text(x: float, y: float, s: Any, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{INK}"{extra}>{esc(s)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.0):.1f}" height="{max(h, 0.0):.1f}" fill="{fill}">'
            f"<title>{esc(tip)}</title></rect>")


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for name, color in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>')
        out.append(_text(x + 14, y, name))
        x += 24 + 7 * len(name)
    return out


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _label_width(labels: Sequence[str]) -> int:
    return min(16 + 7 * LABEL_CHARS, 16 + 7 * max((len(s) for s in labels), default=4))


def _short(label: str) -> str:
    """Axis labels are cut to LABEL_CHARS (the full label is in the bar's tooltip)."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


# --- charts --------------------------------------------------------------------------------------

def hbar_chart(title: str, rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[tuple[str, str]],
               stacked: bool = False, total_label: bool = True) -> str:
    """Horizontal bars, one row per label; several series side by side (or stacked)."""
    labels = [r[0] for r in rows]
    lw = _label_width(labels)
    n_series = len(series)
    row_h = 20 if stacked or n_series == 1 else 10 * n_series + 8
    top = 26 if n_series > 1 else 8
    height = top + row_h * len(rows) + 8
    plot_w = WIDTH - lw - (150 if stacked else 80)  # room for the value labels right of the bars
    vmax = max((sum(v) if stacked else max(v, default=0) for _, v in rows), default=0) or 1
    body = _legend([(name, color) for name, color in series], lw, 14) if n_series > 1 else []
    for i, (label, values) in enumerate(rows):
        y = top + i * row_h
        body.append(_text(lw - 6, y + row_h / 2 + 4, _short(label), "end"))
        x = float(lw)
        for j, ((name, color), v) in enumerate(zip(series, values, strict=True)):
            w = plot_w * v / vmax
            tip = f"{label}: {name} {fmt_int(v)}"
            if stacked:
                body.append(_rect(x, y + 3, w, row_h - 6, color, tip))
                x += w
            else:
                bh = (row_h - 8) / n_series
                body.append(_rect(lw, y + 4 + j * bh, w, bh - 1, color, tip))
                if total_label:
                    body.append(_text(lw + w + 4, y + 4 + j * bh + bh - 2, fmt_int(v),
                                      extra=' font-size="10"' if n_series > 1 else ""))
        if stacked and total_label:
            body.append(_text(x + 4, y + row_h / 2 + 4, " / ".join(fmt_int(v) for v in values)))
    return _svg(title, WIDTH, height, body)


def funnel_chart(funnel: Sequence[dict[str, Any]]) -> str:
    """Each stage: the documents it passed on (blue) and the ones it removed (red), from stats.json."""
    rows = [(str(f.get("stage")), (int(f.get("out") or 0), int(f.get("removed") or 0))) for f in funnel]
    return hbar_chart("Funnel: documents passed on and removed at each stage", rows,
                      [("passed on", KEPT), ("removed", REMOVED)], stacked=True)


def histogram(title: str, counts: Sequence[int], lo: float = 0.0, hi: float = 1.0,
              markers: Sequence[tuple[float, str]] = (), band: tuple[float, float] | None = None,
              band_label: str = "", width: int = WIDTH, height: int = 150, x_label: str = "score") -> str:
    """Vertical bars over equal bins of [lo, hi]; vertical marker lines (thresholds) and a shaded band."""
    left, right, top, bottom = 44, 10, 18, 30
    pw, ph = width - left - right, height - top - bottom
    n = max(len(counts), 1)
    vmax = _nice_max(max(counts, default=0))
    sx = lambda v: left + pw * (v - lo) / (hi - lo)  # noqa: E731
    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{INK}"/>',
            _text(left - 4, top + 8, fmt_int(vmax), "end", ' font-size="10"'),
            _text(left - 4, top + ph, "0", "end", ' font-size="10"')]
    if band is not None:
        x0, x1 = sx(band[0]), sx(band[1])
        body.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{ph}" fill="{BAND}" '
                    f'fill-opacity="0.25"><title>{esc(band_label)}</title></rect>')
    step = (hi - lo) / n
    bw = pw / n
    for i, c in enumerate(counts):
        h = ph * c / vmax
        a, b = lo + i * step, lo + (i + 1) * step
        body.append(_rect(left + i * bw + 0.5, top + ph - h, bw - 1, h, KEPT,
                          f"{fmt_score(a)}–{fmt_score(b)}: {fmt_int(c)} documents"))
    for t in (lo, (lo + hi) / 2, hi):
        body.append(_text(sx(t), top + ph + 13, fmt_score(t), "middle", ' font-size="10"'))
    body.append(_text(left + pw / 2, height - 3, x_label, "middle", ' font-size="10"'))
    for value, label in markers:
        x = sx(min(max(value, lo), hi))
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + ph}" stroke="{INK}" '
                    f'stroke-width="2" stroke-dasharray="4 2"><title>{esc(label)}</title></line>')
        body.append(_text(x - 3, top - 6, label, "end", ' font-size="10"'))
    return _svg(title, width, height, body)


def column_chart(title: str, categories: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]],
                 height: int = 180, x_label: str = "") -> str:
    """Vertical grouped bars over named categories (length bins, cluster sizes)."""
    left, right, top, bottom = 50, 10, 26, 42
    pw, ph = WIDTH - left - right, height - top - bottom
    vmax = _nice_max(max((max(v, default=0) for _, _, v in series), default=0))
    n = max(len(categories), 1)
    gw = pw / n
    bw = (gw - 4) / max(len(series), 1)
    body = _legend([(name, color) for name, color, _ in series], left, 14) if len(series) > 1 else []
    body += [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{INK}"/>',
             _text(left - 4, top + 8, fmt_int(vmax), "end", ' font-size="10"'),
             _text(left - 4, top + ph, "0", "end", ' font-size="10"')]
    every = max(1, math.ceil(n / 12))
    for i, cat in enumerate(categories):
        for j, (name, color, values) in enumerate(series):
            h = ph * values[i] / vmax
            body.append(_rect(left + i * gw + 2 + j * bw, top + ph - h, bw - 0.5, h, color,
                              f"{cat}: {name} {fmt_int(values[i])}"))
        if i % every == 0:
            body.append(_text(left + i * gw + gw / 2, top + ph + 13, cat, "middle", ' font-size="10"'))
    if x_label:
        body.append(_text(left + pw / 2, height - 6, x_label, "middle", ' font-size="10"'))
    return _svg(title, WIDTH, height, body)


def heatmap(title: str, rows: Sequence[str], cols: Sequence[str], values: dict[tuple[str, str], int]) -> str:
    """A table of counts coloured by size (stage x language)."""
    lw = _label_width(rows)
    cw = max(38, min(64, (WIDTH - lw) // max(len(cols), 1)))
    top, rh = 22, 20
    width = lw + cw * len(cols) + 8
    height = top + rh * len(rows) + 6
    vmax = max(values.values(), default=0) or 1
    body = [_text(lw + j * cw + cw / 2, top - 6, c if len(c) <= 8 else c[:7] + "…", "middle") for j, c in enumerate(cols)]
    for i, r in enumerate(rows):
        y = top + i * rh
        body.append(_text(lw - 6, y + rh / 2 + 4, _short(r), "end"))
        for j, c in enumerate(cols):
            v = values.get((r, c), 0)
            alpha = 0.0 if not v else 0.15 + 0.85 * math.sqrt(v / vmax)
            body.append(f'<rect x="{lw + j * cw:.1f}" y="{y:.1f}" width="{cw - 2}" height="{rh - 2}" '
                        f'fill="{REMOVED}" fill-opacity="{alpha:.2f}" stroke="{GRID}">'
                        f"<title>{esc(f'{r} / {c}: {fmt_int(v)} removed')}</title></rect>")
            if v:
                body.append(_text(lw + j * cw + cw / 2 - 1, y + rh / 2 + 3, fmt_int(v), "middle",
                                  ' font-size="10"'))
    return _svg(title, max(width, 200), height, body)
