"""The cell and table formats: numbers as "mean ± sd", Markdown, LaTeX (booktabs) and HTML tables.

Only formatting lives here; what goes into a table is decided in llmal.results, and how each
table is shown in llmal.report.tables.
No dependency beyond pandas (pandas' own to_markdown/to_latex need tabulate/jinja2 and give
less control over escaping and bold cells).
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import pandas as pd

MISSING = "–"

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def format_number(value: float, decimals: int | None) -> str:
    """A number with fixed decimals; `decimals=None` picks them from the magnitude (money)."""
    if is_missing(value):
        return MISSING
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if decimals is None:
        decimals = money_decimals(value)
    return f"{value:.{decimals}f}"


def money_decimals(value: float) -> int:
    """Decimals that keep about three significant digits of a dollar amount (at least 2)."""
    a = abs(value)
    if a == 0 or a >= 1:
        return 2
    return max(2, min(6, 2 - int(math.floor(math.log10(a)))))


def format_mean_sd(mean: float, sd: float, decimals: int | None, *, sep: str = " ± ") -> str:
    """'0.812 ± 0.013'; only the mean when sd is undefined (a single seed)."""
    if is_missing(mean):
        return MISSING
    if decimals is None:
        decimals = money_decimals(float(mean))
    m = format_number(mean, decimals)
    if is_missing(sd):
        return m
    return f"{m}{sep}{format_number(sd, decimals)}"


def format_percent(share: float) -> str:
    """A share as '12.5%'; '–' when missing."""
    return MISSING if is_missing(share) else f"{100 * float(share):.1f}%"


def format_count(value: float) -> str:
    """A whole count with thousands separators ('1,234'); '–' when missing."""
    return MISSING if is_missing(value) else f"{int(value):,}"


def format_p(p: float) -> str:
    """p-values: three decimals, '<0.001' below that, '–' when undefined."""
    if is_missing(p):
        return MISSING
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def escape_markdown(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, *, align_right: Sequence[str] = ()) -> str:
    """A GitHub-flavoured Markdown table of the frame's cells as strings (index ignored)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(escape_markdown(c) for c in cols) + " |",
             "|" + "|".join("---:" if c in align_right else "---" for c in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(escape_markdown(_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def escape_latex(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_mean_sd(mean: float, sd: float, decimals: int | None, *, bold: bool = False) -> str:
    """'$0.812 \\pm 0.013$' with the mean in bold when asked; '--' when missing."""
    if is_missing(mean):
        return "--"
    if decimals is None:
        decimals = money_decimals(float(mean))
    m = format_number(mean, decimals)
    m = rf"\mathbf{{{m}}}" if bold else m
    if is_missing(sd):
        return f"${m}$"
    return rf"${m} \pm {format_number(sd, decimals)}$"


def html_table(df: pd.DataFrame, *, css_class: str = "tbl", bold_cells: set[tuple[int, str]] | None = None,
               numeric: Sequence[str] = ()) -> str:
    """An HTML table of the frame's cells (escaped); `bold_cells` holds (row position, column)."""
    bold_cells = bold_cells or set()
    num_cols = set(numeric)
    head = "".join(("<th class=\"num\">" if c in num_cols else "<th>") + f"{html.escape(str(c))}</th>"
                   for c in df.columns)
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cells = []
        for col, v in zip(df.columns, row):
            text = html.escape(_cell(v))
            if (i, col) in bold_cells:
                text = f"<strong>{text}</strong>"
            cls = ' class="num"' if col in num_cols else ""
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{css_class}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _cell(v: object) -> str:
    if is_missing(v):
        return MISSING
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_diff_ci(mean: float, lo: float, hi: float) -> str:
    if is_missing(mean):
        return MISSING
    s = f"{mean:+.3f}"
    if not is_missing(lo):
        s += f" [{lo:+.3f}, {hi:+.3f}]"
    return s
