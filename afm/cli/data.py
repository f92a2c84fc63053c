"""`datasets`, `download` and `prepare`: what data is here, fetching the paper's with checksums, and a click
log prepared once for training at scale."""
from __future__ import annotations

from afm.cli.common import add_data_dir, stderr_log
from afm.data import data_dir, dataset_status
from afm.data.download import download
from afm.data.prepared import PrepareSettings, prepare


def add(sub) -> None:
    d = sub.add_parser("datasets", help="what data is available here and how to get the rest")
    add_data_dir(d)
    d.set_defaults(handler=cmd_datasets)

    g = sub.add_parser("download", help="fetch Frappe or MovieLens files, checking their checksums")
    g.add_argument("name", choices=("frappe", "movielens"))
    g.add_argument("--mirror", help="base URL serving the same file names (instead of the original hosts)")
    g.add_argument("--force", action="store_true", help="download even files already present and valid")
    add_data_dir(g)
    g.set_defaults(handler=cmd_download)
    add_prepare(sub)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="a click log (CSV, TSV, gzipped, parquet) prepared once: per-split id matrices, "
                       "vocabularies and dataset.json in a directory that --data then takes")
    p.add_argument("files", nargs="+", metavar="FILE", help="the files, read in order as one table")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--out", required=True, metavar="DIR", help="the prepared directory (a rerun resumes it)")
    p.add_argument("--names", metavar="COL,...", help="column names of headerless files, in order")
    p.add_argument("--sep", help="the separator (default: a tab for .tsv and .txt, else a comma)")
    p.add_argument("--numeric", metavar="COL,...", help="integer columns, log-square bucketed; the rest are categories")
    p.add_argument("--buckets", choices=("log-square", "quantile"), default="log-square",
                   help="integer columns: floor(ln(x)^2) as the Criteo winners, or equally filled quantile bins")
    p.add_argument("--quantiles", type=int, default=32, help="bins per integer column with --buckets quantile")
    p.add_argument("--min-count", type=int, default=1, help="values seen fewer times in train become one rare id")
    p.add_argument("--drop", metavar="COL,...", help="columns that are not fields (a row id, a leak)")
    p.add_argument("--split-column", help="a column of train/validation/test (default: a seeded 7:2:1)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the 7:2:1 split")
    p.set_defaults(handler=cmd_prepare)


def cmd_prepare(args) -> int:
    settings = PrepareSettings(args.target, _names(args.names), args.sep or "", _names(args.numeric),
                               buckets=args.buckets, quantiles=args.quantiles, min_count=args.min_count,
                               split_column=args.split_column or "", seed=args.seed, drop=_names(args.drop))
    last = [0.0]

    def progress(line: str) -> None:  # a line every few seconds, not every batch
        import time

        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            stderr_log(line)

    out = prepare(args.files, args.out, settings, log=progress)
    from afm.data.prepared import read_meta

    meta = read_meta(out)
    print(f"prepared {sum(meta['rows'].values()):,} rows ({', '.join(f'{k} {v:,}' for k, v in meta['rows'].items())}) "
          f"into {out}: {len(meta['fields'])} fields, {sum(meta['vocabulary_sizes']):,} ids; values folded into rare "
          f"ids (seen fewer than {settings.min_count} times in train): {sum(meta['folded_into_rare'].values()):,}")
    for field, why in meta.get("row_identifiers", {}).items():
        print(f"warning: {field} looks like a row identifier ({why}); prepare again with --drop {field} unless "
              f"it describes the row")
    from afm.data.prepared import load_prepared
    from afm.explain.leaks import leak_sentence, likely_leaks

    leaks = leak_sentence(likely_leaks(load_prepared(out)))  # from the data alone, read a block at a time
    if leaks:
        print(f"warning: {leaks}")
    return 0


def cmd_datasets(args) -> int:
    for row in dataset_status(args.data_dir):
        state = "available" if row["available"] else "missing  "
        hint = f"  get it with: {row['get']}" if row["get"] else ""
        print(f"{row['name']:<10} {state}  {row['where']}{hint}")
    return 0


def cmd_download(args) -> int:
    download(args.name, data_dir(args.data_dir), mirror=args.mirror, force=args.force)
    return 0
