"""Plain-text tables for the reports of metrics.py and spans.py."""

from __future__ import annotations


def table(rows: list[list[str]], left_columns: int = 1) -> list[str]:
    """Align cells into columns: the first `left_columns` left-justified, the rest right.

    Every returned line has the same width.
    """
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if j < left_columns else cell.rjust(width)
            for j, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return lines
