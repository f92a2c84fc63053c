"""`datasets` and `download`: what data is here, and fetching the paper's with checksums."""
from __future__ import annotations

from afm.cli.common import add_data_dir
from afm.data import data_dir, dataset_status
from afm.data.download import download


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


def cmd_datasets(args) -> int:
    for row in dataset_status(args.data_dir):
        state = "available" if row["available"] else "missing  "
        hint = f"  get it with: {row['get']}" if row["get"] else ""
        print(f"{row['name']:<10} {state}  {row['where']}{hint}")
    return 0


def cmd_download(args) -> int:
    download(args.name, data_dir(args.data_dir), mirror=args.mirror, force=args.force)
    return 0
