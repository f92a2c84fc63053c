"""What a data source is: a name, how it loads, what it records, and the settings its data is trained
with by default. Each source module declares one (or two) `Source`; `afm.data.sources` lists them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from afm.data.dataset import Dataset


@dataclass(frozen=True)
class Source:
    """One kind of data. A named source (`synthetic`, `frappe`) is asked for by name; a path source
    (`libfm`, `csv`) claims the paths it can read (`claims`)."""

    name: str  # the --data name, and the "kind" its datasets record in their source
    summary: str  # one line for `python -m afm datasets` and the docs
    load: Callable[..., Dataset]  # (spec, directory, target=, seed=) -> Dataset; spec is the name or a path
    recorded: Callable[[dict, Path], Dataset]  # a Dataset's recorded `source` dict and the data directory
    claims: Callable[[Path], bool] | None = None  # path sources: whether this path is theirs
    status: Callable[[Path], dict] | None = None  # named sources: {"available", "where", "get"} in a directory
    presets: dict = field(default_factory=dict)  # settings its data trains with by default (every family)
    quick: dict = field(default_factory=dict)  # --quick: the same protocol in minutes on a 2-core CPU
    user_data: bool = False  # a user's own files: a two-valued target trains with logistic loss
    generated: bool = False  # made here from a seed (no file, no licence): the data seed is a choice

    @property
    def named(self) -> bool:
        return self.claims is None


def always_available(where: str) -> Callable[[Path], dict]:
    """The status of a source generated here: always available."""
    return lambda directory: {"available": True, "where": where, "get": ""}
