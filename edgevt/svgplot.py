"""Hand-drawn SVG for the HTML report: scales (linear or log), axes, markers, legends and the <svg> wrapper.

Pure string building, so edgevt needs no plotting library. Coordinates are SVG user units on a canvas W wide that the
page scales. Titles and labels are escaped here; swatches and bodies are SVG fragments the caller built.
"""

from __future__ import annotations

import html
import math

SHAPES = ("circle", "square", "triangle", "diamond", "down")  # what `marker` draws
LOG_SPAN = 20  # wider than this, a linear axis squeezes the fast cells into a few pixels
W = 1000  # SVG user units: drawn 1000 wide, scaled to the page


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class Scale:
    """Data to pixels on a 1-2-5 rounded domain; log when the values span more than LOG_SPAN (or when asked)."""

    def __init__(self, values, px0: float, px1: float, log: bool | None = None):
        vals = [v for v in values if v is not None and math.isfinite(v)] or [1.0]
        lo, hi = min(vals), max(vals)
        self.log = (lo > 0 and hi / lo > LOG_SPAN) if log is None else (log and lo > 0)
        self.px0, self.px1 = px0, px1
        if self.log:
            self.lo, self.hi = _nice(lo / 1.15, down=True), _nice(hi * 1.15, down=False)
        else:  # bars: a linear axis starts at zero, or the bar lengths lie
            lo = min(lo, 0.0)
            self.step = _nice((max(hi - lo, abs(hi) * 0.5) or 1.0) / 5, down=False)
            self.lo, self.hi = math.floor(lo / self.step) * self.step, math.ceil(hi * 1.05 / self.step) * self.step
        if not self.hi > self.lo:  # identical values after rounding: widen so nothing divides by zero
            self.hi = self.lo * 10 if self.log else self.lo + self.step

    def __call__(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        t = math.log(v / self.lo) / math.log(self.hi / self.lo) if self.log else (v - self.lo) / (self.hi - self.lo)
        return self.px0 + t * (self.px1 - self.px0)

    def ticks(self) -> list[float]:
        if not self.log:
            return [self.lo + i * self.step for i in range(int(round((self.hi - self.lo) / self.step)) + 1)]
        e0, e1 = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
        inside = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in (1, 2, 5) if self.lo * 0.999 <= m * 10.0 ** e <= self.hi * 1.001]
        if len(inside) <= 8:
            return inside
        decades = [t for t in inside if f"{t:e}".startswith("1.")]
        return decades[:: math.ceil(len(decades) / 8)] if len(decades) >= 2 else inside[:: math.ceil(len(inside) / 8)]

    def label(self, v: float) -> str:
        """A log axis reaching below 0.01 writes every tick under 1 as a power (1e-1 … 1e-7), never 0.01 beside 1e-3."""
        plain = v == 0 or (1e-2 <= abs(v) < 1e5 and not (self.log and self.lo < 1e-2 and abs(v) < 1))
        return f"{v:.6g}" if plain else f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")

    def axis(self, at: float, title: str, grid_to: float, vertical: bool = False) -> str:
        """Axis line, grid, tick labels and title: along y=at below the plot, or (vertical) along x=at on its left."""
        if vertical:
            out = [f'<line x1="{at}" x2="{at}" y1="{self.px0}" y2="{self.px1}" class="axis"/>', *(
                f'<line x1="{at}" x2="{grid_to}" y1="{self(t):.1f}" y2="{self(t):.1f}" class="grid"/><text x="{at - 6}" '
                f'y="{self(t) + 4:.1f}" text-anchor="end" class="tick">{self.label(t)}</text>' for t in self.ticks())]
            return "".join(out) + (f'<text transform="translate({at - 58},{(self.px0 + self.px1) / 2:.0f}) rotate(-90)" '
                                   f'text-anchor="middle" class="title">{esc(title)}</text>')
        out = [f'<line x1="{self.px0}" x2="{self.px1}" y1="{at}" y2="{at}" class="axis"/>', *(
            f'<line x1="{self(t):.1f}" x2="{self(t):.1f}" y1="{grid_to}" y2="{at}" class="grid"/><text x="{self(t):.1f}" '
            f'y="{at + 16}" text-anchor="middle" class="tick">{self.label(t)}</text>' for t in self.ticks())]
        mid = (self.px0 + self.px1) / 2
        return "".join(out) + f'<text x="{mid:.0f}" y="{at + 36}" text-anchor="middle" class="title">{esc(title)}</text>'


def _nice(x: float, down: bool) -> float:
    """The nearest 1, 2 or 5 times a power of ten below (down) or above x."""
    e = math.floor(math.log10(x))
    steps = [m * 10.0 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return max(s for s in steps if s <= x * 1.0000001) if down else min(s for s in steps if s >= x * 0.9999999)


def marker(shape: str, x: float, y: float, r: float, attrs: str) -> str:
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {attrs}/>'
    if shape == "square":
        return f'<rect x="{x - r * .85:.1f}" y="{y - r * .85:.1f}" width="{r * 1.7:.1f}" height="{r * 1.7:.1f}" {attrs}/>'
    pts = {"triangle": [(0, -1.15), (1.05, .75), (-1.05, .75)], "diamond": [(0, -1.2), (1.2, 0), (0, 1.2), (-1.2, 0)],
           "down": [(0, 1.15), (1.05, -.75), (-1.05, -.75)]}[shape]
    return f'<polygon points="{" ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}" for dx, dy in pts)}" {attrs}/>'


def legend(items: list[tuple[str, str]], x: float, y: float, column: bool = False) -> str:
    """(swatch drawn at the origin, label) pairs in a row spaced by the labels' estimated widths, or in a column."""
    out = []
    for swatch, label in items:
        out.append(f'<g transform="translate({x:.0f},{y:.0f})">{swatch}<text x="20" y="4">{esc(clip(label, 26))}'
                   f"<title>{esc(label)}</title></text></g>")
        x, y = (x, y + 22) if column else (x + 34 + 7 * min(len(label), 26), y)
    return "".join(out)


def svg_root(height: float, body: str, label: str) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0f}" role="img" aria-label="{esc(label)}">{body}</svg>'
