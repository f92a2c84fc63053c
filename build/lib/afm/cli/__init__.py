"""cli: `python -m afm COMMAND ...`, one module per command group, each with its flags beside its handler:

    train.py        train, import, encode            make a model directory (or the data for one)
    inspect.py      evaluate, explain, interactions  read saved models
    experiments.py  verdict, reproduce, ablate, results   write and show results files
    bench.py        bench                            speed beside the peers
    data.py         datasets, download               what data is here, and fetching it

Every user-fixable problem ends with exit status 2 and one line on stderr.

May import: every layer of afm.
"""
from __future__ import annotations

import os
import sys
import warnings

from afm.cli import bench, data, experiments, inspect, train
from afm.cli.common import EXIT_USAGE, Parser
from afm.core.errors import AFMError
from afm.core.provenance import git_state
from afm.fast.allocator import retain_freed_memory
from afm.training import distributed

GROUPS = (train, inspect, experiments, bench, data)
TRAINING_COMMANDS = ("train", "reproduce", "ablate", "bench", "verdict")


def build_parser() -> Parser:
    parser = Parser(prog="python -m afm", description="Train, evaluate and explain factorization models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes: the checks say what matters
        return _run(args)


def _run(args) -> int:
    git_state()  # the commit of the code this process loaded, before anything can change the checkout
    if args.command in TRAINING_COMMANDS:
        retain_freed_memory()  # faster training at large batches; memory stays with the process (afm.fast.allocator)
    try:
        return args.handler(args)
    except AFMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, the traceback on request
        if os.environ.get("AFM_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} (set AFM_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        distributed.finish()
