"""Charts as inline SVG drawn on the server: no JavaScript library, nothing fetched.

The dashboard's charts are horizontal bars, one per region, split into coloured segments
(grades, or case stages) in the colours of maps.legend. Each bar is the region's 100 %, so
a village of 40 households and a township of 4,000 can be compared by share; the count
stands at the end of the row label. Each segment carries a <title>, the hover text.

Geometry is in percent of the chart's width, so the bars stretch with the page while the
text keeps its size (a viewBox would shrink the labels to nothing on a phone). Every label
is escaped: region names come from imported spreadsheets.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from maps.legend import Category
from maps.numbers import percent

LABEL_HEIGHT = 18  # px: the row's label line
BAR_HEIGHT = 16  # px
ROW_GAP = 10  # px under each bar
ROW_HEIGHT = LABEL_HEIGHT + BAR_HEIGHT + ROW_GAP


@dataclass(frozen=True)
class Bar:
    """One row of a chart: a label and a count per category (in the categories' order)."""

    label: str
    values: Sequence[int]
    strong: bool = False  # the whole region's row, above its children's

    @property
    def total(self) -> int:
        return sum(self.values)


def share_text(part: int, whole: int) -> str:
    """A share with one decimal, in the reader's number format: "37.5%"."""
    return percent(part / whole)


def _segments(bar: Bar, categories: Sequence[Category], top: int, empty_text: str) -> SafeString:
    """The bar's non-empty segments, placed end to end from their cumulative counts so that
    rounding never leaves a gap or an overlap."""
    total = bar.total
    if not total:
        return format_html(
            '<rect x="0" y="{}" width="100%" height="{}" fill="none" stroke="#8a94a0" '
            'stroke-dasharray="4 3"><title>{}</title></rect>',
            top,
            BAR_HEIGHT,
            empty_text % {"region": bar.label},
        )
    parts = []
    before = 0
    for category, value in zip(categories, bar.values, strict=True):
        if value:
            start = before * 100 / total
            before += value
            end = before * 100 / total
            hover = _("%(region)s — %(category)s: %(n)s (%(share)s)") % {
                "region": bar.label,
                "category": category.label,
                "n": value,
                "share": share_text(value, total),
            }
            parts.append(
                format_html(
                    '<rect class="chart__segment" data-key="{}" x="{}%" y="{}" width="{}%" '
                    'height="{}" fill="{}"><title>{}</title></rect>',
                    category.key,
                    f"{start:.3f}",
                    top,
                    f"{end - start:.3f}",
                    BAR_HEIGHT,
                    category.colour,
                    hover,
                )
            )
    return mark_safe("".join(parts))  # each part was built by format_html


def stacked_bars(
    bars: Sequence[Bar],
    categories: Sequence[Category],
    *,
    label: str,
    description: str = "",
    empty_text: str | None = None,
) -> SafeString:
    """An accessible SVG: role="img" with `label` as its name and `description` (e.g. "the
    table below has the same figures") as its description; one row per bar. `empty_text`,
    with %(region)s, is the hover text of an empty bar ("no households" unless given)."""
    empty_text = empty_text or _("%(region)s: no households")
    rows = []
    for index, bar in enumerate(bars):
        top = index * ROW_HEIGHT
        count = ngettext("%(n)s household", "%(n)s households", bar.total) % {"n": bar.total}
        rows.append(
            format_html(
                '<g class="chart__row{}">'
                '<text class="chart__label" x="0" y="{}">{}</text>'
                '<text class="chart__total" x="100%" y="{}" text-anchor="end">{}</text>'
                "{}</g>",
                " chart__row--strong" if bar.strong else "",
                top + LABEL_HEIGHT - 5,
                bar.label,
                top + LABEL_HEIGHT - 5,
                count,
                _segments(bar, categories, top + LABEL_HEIGHT, empty_text),
            )
        )
    height = max(len(bars) * ROW_HEIGHT - ROW_GAP, 1)
    return format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{}" '
        'width="100%" height="{}">{}{}</svg>',
        label,
        height,
        format_html("<desc>{}</desc>", description) if description else "",
        mark_safe("".join(rows)),  # each row was built by format_html
    )


def legend(categories: Sequence[Category]) -> SafeString:
    """The chart's key as an HTML list: a small coloured square and the label per category."""
    return format_html(
        '<ul class="chart-legend">{}</ul>',
        format_html_join(
            "",
            '<li><svg width="12" height="12" aria-hidden="true" focusable="false">'
            '<rect width="12" height="12" fill="{}"/></svg> {}</li>',
            ((c.colour, c.label) for c in categories),
        ),
    )
