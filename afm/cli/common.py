"""What every command shares: the parser that fails in one line, the data-directory and settings flags,
and the checks made before any work."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from afm.core import settings
from afm.core.errors import AFMError
from afm.data.tabular import TableOptions
from afm.models.families import FAMILIES, taking
from afm.store.checkpoints import is_model_dir

EXIT_USAGE = 2
SPLITS = ("train", "validation", "test")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def add_table_flags(p) -> None:
    """How a user's table (CSV, TSV, parquet) is read: its target, what each column is, its layout."""
    g = p.add_argument_group("a CSV, TSV or parquet file")
    g.add_argument("--target", help="the target column")
    g.add_argument("--categorical", metavar="COL,...", help="columns whose every value is its own feature (integer "
                   "ids, codes), whatever they look like")
    g.add_argument("--numeric", metavar="COL,...", help="numeric columns, cut into quantile bins when they have many "
                   "values")
    g.add_argument("--drop", metavar="COL,...", help="columns that are not fields (a row index, a leak)")
    g.add_argument("--keep", metavar="COL,...", help="use these columns although they look like row ids (a pandas "
                   "index, an id of the row, a counter: left out by default, one line each says so)")
    g.add_argument("--sep", help="the separator (default: sniffed from , ; tab |); 'tab' for a tab")
    g.add_argument("--no-header", dest="header", action="store_false", help="the first row is data: columns are named "
                   "col1, col2, ... (or --names)")
    g.add_argument("--names", metavar="COL,...", help="column names for a file without a header")
    g.add_argument("--split-column", metavar="COL", help="a column of train/validation/test naming each row's split "
                   "(default: a seeded 7:2:1 split); the held-out rows a model trained elsewhere is judged on")


def table_options(args):
    """The TableOptions the table flags give."""
    def names(text):
        return tuple(n.strip() for n in (text or "").split(",") if n.strip())

    sep = {"tab": "\t", "\\t": "\t"}.get(args.sep, args.sep)
    if sep is not None and len(sep) != 1:
        raise AFMError(f"--sep takes one character (or 'tab'), not {args.sep!r}")
    return TableOptions(categorical=names(args.categorical), numeric=names(args.numeric), drop=names(args.drop),
                        keep=names(getattr(args, 'keep', None)),
                        sep=sep, header=args.header, names=names(args.names), split_column=args.split_column)


def add_data_dir(p) -> None:
    p.add_argument("--data-dir", help="data directory (default: $AFM_DATA_DIR, else a per-user cache directory)")


def add_setting_flags(parser, names, title: str | None = None) -> None:
    """argparse flags for these settings (afm.core.settings), with no default (None: take the preset's).
    A setting only some families take says which."""
    group = parser.add_argument_group(title) if title else parser
    for name in names:
        s = settings.BY_NAME[name]
        families = taking(name)
        only = "" if len(families) == len(FAMILIES) else f" ({', '.join(f.label for f in families)})"
        if s.type is bool:
            group.add_argument(s.cli_flag, dest=name, action="store_const", const=s.switched, help=s.help + only)
        else:
            group.add_argument(s.cli_flag, dest=name, type=s.type, choices=s.choices or None, help=s.help + only)


def setting_values(args, names) -> dict:
    return {name: getattr(args, name, None) for name in names}


def check_output_dir(out: str, overwrite: bool) -> None:
    """Before any work: --out must be a place a model directory can be written."""
    path = _writable_parent(out)
    if path.exists() or path.is_symlink():
        if not is_model_dir(path):
            raise AFMError(f"--out {out} exists and is not a model directory; choose another --out")
        if not overwrite:
            raise AFMError(f"--out {out} already holds a model; choose another --out or pass --overwrite")


def _writable_parent(out: str, flag: str = "--out") -> Path:
    path = Path(out)
    parent = next((p for p in path.resolve().parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise AFMError(f"{flag} {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise AFMError(f"{flag} {out}: {parent} is not writable")
    return path


def check_output_file(out: str | None) -> None:
    """Before any work: --out must be a place a results file can be written (not a folder)."""
    if out is None:
        return
    if not out.strip():
        raise AFMError("--out is empty; name a results file")
    path = _writable_parent(out)
    if path.is_dir():
        raise AFMError(f"--out {out} is a folder; name a results file (e.g. {Path(out) / 'results.json'})")


def check_output_folder(out: str) -> None:
    """Before any work: --out must be a new or existing folder of its own (never '' or /, where the files
    would land in the current folder, the checkout, or the root)."""
    path = Path(out)
    if not out.strip() or path.resolve() in (Path("/").resolve(), Path.cwd().resolve()):
        raise AFMError(f"--out {out!r}: name a folder of its own (the files would land in {path.resolve()})")
    _writable_parent(out)
    if path.exists() and not path.is_dir():
        raise AFMError(f"--out {out} is a file, not a folder")


def stderr_log(line: str) -> None:
    """Progress lines of long commands: stderr, so stdout holds only the result."""
    print(line, file=sys.stderr)
