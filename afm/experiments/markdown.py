"""A DataFrame as a Markdown table, for the generated result tables in docs/results."""
from __future__ import annotations

import pandas as pd


def escape(text) -> str:
    """A value as table text that cannot end a cell, a row or an HTML comment (results files are data)."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
            .replace(">", "&gt;"))


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    def cell(value):
        if isinstance(value, float):
            return "n/a" if value != value else f"{value:.{digits}f}"
        return escape(value)
    lines = ["| " + " | ".join(escape(c) for c in table.columns) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
