"""Columns of a user's table that identify rows rather than describe them: a row index that pandas wrote
(`Unnamed: 0`), an id of the row, a strictly increasing counter. As a field such a column memorises its
rows, and where a file is sorted by the label it leaks it (a Titanic export sorted by class, sex and
survival made "Unnamed: 0 x sex" the top interaction at test AUC 0.93). They are left out unless kept.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

INDEX_NAME = re.compile(r"(?i)^(unnamed: ?\d+|index|level_\d+|row|rowid|row_id|row_?num(ber)?|#|)$")
ID_NAME = re.compile(r"(?i)(^|[_\-\s.])id$|^id[_\-\s.]|^.+id$")  # id, passenger_id, PassengerId, id_row
NEAR_UNIQUE = 0.9  # an id-named column with at least this share of distinct values identifies rows
MIN_ROWS = 20  # fewer rows say too little about uniqueness or order


def row_identifier(values: pd.Series, name: str) -> str | None:
    """Why a column identifies rows rather than describes them, or None. Reasons: named like an index;
    named like an id with nearly every value distinct; whole numbers strictly monotone over the rows, like a
    counter; every value distinct, for text, or for whole numbers packed like ids (1..N in any order: an
    amount distinct in every row is a measurement; numbers with decimals, or inf, are binned or refused
    later, never flagged)."""
    if INDEX_NAME.match(str(name).strip()):
        return "named like a row index"
    rows = len(values)
    if rows < MIN_ROWS:
        return None
    present = values.dropna()
    distinct = present.nunique()
    if ID_NAME.search(str(name)) and distinct >= NEAR_UNIQUE * rows:
        return f"named like an id, {distinct:,} distinct values in {rows:,} rows"
    numbers = pd.to_numeric(present, errors="coerce")  # values arrive as text
    parsed = len(present) == rows and not numbers.isna().any()
    array = numbers.to_numpy(dtype=float) if parsed else None
    integers = parsed and bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))
    if integers:
        steps = np.diff(array)
        if (steps > 0).all() or (steps < 0).all():
            return "whole numbers that only increase (or only decrease) from row to row, like a counter"
    dense = integers and array.max() - array.min() + 1 <= 2 * rows  # ids 1..N in any order, not amounts
    if distinct == rows and (dense or not parsed):
        return f"a different value in every one of its {rows:,} rows"
    return None


def row_identifiers(frame: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Of these columns, those that identify rows, each with its reason (see `row_identifier`)."""
    found = {}
    for name in columns:
        reason = row_identifier(frame[name], name)
        if reason:
            found[name] = reason
    return found
