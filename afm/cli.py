"""Command line: `python -m afm train|evaluate|explain|datasets|download ...`.

Every user-fixable problem ends with exit status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from afm import distributed
from afm.allocator import retain_freed_memory
from afm.errors import AFMError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _add_tuning(p):
    tuning = p.add_argument_group("settings other than the paper's (choose them on validation, never test)")
    tuning.add_argument("--optimizer", choices=("adagrad", "adam"))
    tuning.add_argument("--lr", type=float)
    tuning.add_argument("--attention-factor", type=int, help="AFM's t")
    tuning.add_argument("--l2-attention", type=float, help="AFM's lambda")
    tuning.add_argument("--dropout", type=float, help="AFM's dropout on the pooled vector")


def _tuning(args) -> dict:
    return {"optimizer": args.optimizer, "lr": args.lr, "dropout": args.dropout,
            "attention_factor": args.attention_factor, "l2_attention": args.l2_attention}


def _add_data_dir(p):
    p.add_argument("--data-dir", help="data directory (default: $AFM_DATA_DIR, else a per-user cache directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m afm", description="Train, evaluate and explain FM and AFM models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train FM or AFM and save the model directory")
    t.add_argument("--data", default="synthetic", help="synthetic, frappe, movielens, a libfm directory or a CSV file")
    t.add_argument("--model", choices=("fm", "afm"), default="afm")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--target", help="target column of a CSV file")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=("adagrad", "adam"))
    t.add_argument("--embed-dim", type=int, help="k, the embedding size")
    t.add_argument("--attention-factor", type=int, help="t, the attention network's hidden size (AFM)")
    t.add_argument("--dropout", type=float, help="dropout on the pooled interaction vector")
    t.add_argument("--attention-dropout", type=float, help="dropout on the attention weights (AFM)")
    t.add_argument("--l2-attention", type=float, help="lambda, L2 penalty on the attention weights W (AFM)")
    t.add_argument("--uniform-attention", action="store_true", help="AFM ablation: fix every a_ij to 1/pairs")
    t.add_argument("--fixed-p", action="store_true", help="AFM ablation: fix the projection p to ones")
    t.add_argument("--pretrain", metavar="FM_DIR", help="start AFM from this trained FM's embeddings")
    t.add_argument("--p-start", choices=("ones", "pairs"), help="with --pretrain: start p at ones (the authors') "
                   "or at the number of pairs (AFM then starts exactly as the FM)")
    t.add_argument("--patience", type=int, help="epochs without validation gain before stopping (0: never)")
    t.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(t)

    e = sub.add_parser("evaluate", help="RMSE (clipped to the label range) and MAE of a saved model")
    e.add_argument("model_dir")
    e.add_argument("--split", default="test", choices=("train", "validation", "test"))
    e.add_argument("--json", action="store_true")
    _add_data_dir(e)

    x = sub.add_parser("explain", help="field-pair attention over a split, or one instance's decomposition")
    x.add_argument("model_dir")
    x.add_argument("--split", default="test", choices=("train", "validation", "test"))
    x.add_argument("--row", type=int, help="explain this instance of the split")
    x.add_argument("--json", action="store_true")
    _add_data_dir(x)

    r = sub.add_parser("reproduce", help="the paper's protocol: FM, then AFM from FM's embeddings; a results file")
    r.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    r.add_argument("--quick", action="store_true", help="smaller k and fewer epochs: minutes on a 2-core CPU")
    r.add_argument("--studies", action="store_true", help="also sweep t, lambda and dropout, and run FM+A")
    r.add_argument("--out", help="results file (default: results/DATASET[-quick].json)")
    r.add_argument("--fm", metavar="FM_DIR", help="reuse this trained FM instead of training one")
    r.add_argument("--epochs", type=int, help="cap the epochs (default: the paper's 100, with early stopping)")
    r.add_argument("--keep-models", metavar="DIR", help="also save the FM and AFM in this directory")
    r.add_argument("--p-start", choices=("ones", "pairs"), default="ones",
                   help="AFM's p at the start: ones (the authors') or the number of pairs")
    r.add_argument("--device", default="auto")
    _add_tuning(r)
    _add_data_dir(r)

    a = sub.add_parser("ablate", help="is it the attention? FM, uniform AFM, FM+A, AFM with and without lambda")
    a.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    a.add_argument("--quick", action="store_true", help="smaller k and fewer epochs: minutes on a 2-core CPU")
    a.add_argument("--out", help="results file (default: results/ablation-DATASET[-quick].json)")
    a.add_argument("--device", default="auto")
    a.add_argument("--fm", metavar="FM_DIR", help="start every AFM from this trained FM instead of training one")
    a.add_argument("--epochs", type=int, help="cap the epochs of every model")
    _add_tuning(a)
    _add_data_dir(a)

    b = sub.add_parser("bench", help="training speed beside DeepCTR-Torch and pytorch-fm; explanation latency; memory")
    b.add_argument("--quick", action="store_true", help="the main cases only, short windows: under 5 minutes")
    b.add_argument("--app", action="store_true", help="also time the app's page switches in headless Chromium")
    b.add_argument("--device", default="auto", help="where training is timed: auto (a GPU if any), cpu, cuda")
    _add_data_dir(b)

    d = sub.add_parser("datasets", help="what data is available here and how to get the rest")
    _add_data_dir(d)

    g = sub.add_parser("download", help="fetch Frappe or MovieLens files, checking their checksums")
    g.add_argument("name", choices=("frappe", "movielens"))
    g.add_argument("--mirror", help="base URL serving the same file names (instead of the original hosts)")
    g.add_argument("--force", action="store_true", help="download even files already present and valid")
    _add_data_dir(g)
    return parser


def cmd_train(args) -> int:
    from afm.data import load_dataset
    from afm.workflows import train_and_save

    dataset = load_dataset(args.data, args.data_dir, target=args.target, seed=args.seed)
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
        "embed_dim": args.embed_dim, "attention_factor": args.attention_factor, "dropout": args.dropout,
        "attention_dropout": args.attention_dropout, "l2_attention": args.l2_attention, "patience": args.patience,
        "device": args.device, "seed": args.seed,
        "attention": False if args.uniform_attention else None, "learn_p": False if args.fixed_p else None,
        "p_start": args.p_start,
    }
    if args.model == "fm" and (args.uniform_attention or args.fixed_p or args.pretrain):
        raise AFMError("--uniform-attention, --fixed-p and --pretrain apply to --model afm")
    log = print if distributed.is_main() else (lambda *a, **k: None)
    log(f"{dataset.name}: {dataset.num_fields} fields, {dataset.num_features} features, "
          + ", ".join(f"{s} {len(p)}" for s, p in dataset.splits.items()), file=sys.stderr)
    if dataset.notes:
        log(f"note: {dataset.notes}", file=sys.stderr)
    _, result, path = train_and_save(dataset, args.model, args.out, overrides, args.pretrain,
                                     show_progress=not args.quiet and sys.stderr.isatty())
    if not distributed.is_main():
        return 0  # rank 0 saves and reports
    best = result.history[result.best_epoch]
    print(f"{args.model.upper()} best epoch {result.best_epoch} ({result.stop_reason}, {result.seconds:.1f}s on "
          f"{result.device}): train RMSE {best['train_rmse']:.4f}, validation RMSE {best['validation_rmse']:.4f}")
    if args.model == "afm":
        from afm.checkpoints import read_meta
        from afm.statistics import describe_spread

        print(describe_spread(read_meta(path)["attention_spread"], "afm") + " (validation split)")
    print(f"saved {path}")
    return 0


def cmd_evaluate(args) -> int:
    from afm.training import evaluate
    from afm.workflows import load_with_data

    loaded, dataset = load_with_data(args.model_dir, args.data_dir)
    metrics = evaluate(loaded.model, dataset.splits[args.split], dataset.label_range)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split}: RMSE {metrics['rmse']:.4f}  MAE {metrics['mae']:.4f}  n {metrics['n']}")
    return 0


def cmd_explain(args) -> int:
    from afm.explain import decompose, explain_split
    from afm.statistics import attention_spread, describe_spread, pair_statistics
    from afm.workflows import load_with_data

    loaded, dataset = load_with_data(args.model_dir, args.data_dir)
    explanation = explain_split(loaded.model, dataset, args.split)
    spread_line = describe_spread(attention_spread(explanation), loaded.model.config.kind)
    print(spread_line, file=sys.stderr if args.json else sys.stdout)
    if args.row is not None:
        result = decompose(loaded.model, dataset, args.split, args.row)
        if args.json:
            print(json.dumps(result))
            return 0
        print(f"{args.split} row {args.row}: prediction {result['prediction']:+.4f}, label {result['label']:+.0f}")
        print(f"  bias {result['bias']:+.4f}")
        for term in result["first_order"]:
            print(f"  {term['feature']:<40} {term['value']:+.4f}")
        print(f"  {'pair':<60} {'attention':>9} {'interaction':>11} {'contribution':>12}")
        for p in result["pairs"]:
            label = f"{p['feature_a']} x {p['feature_b']}"
            print(f"  {label[:60]:<60} {p['attention']:>9.4f} {p['interaction']:>+11.4f} {p['contribution']:>+12.4f}")
        return 0
    columns = ["field_a", "field_b", "mean_attention", "mean_abs_contribution"]
    table = pair_statistics(explanation)[columns]
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_reproduce(args) -> int:
    from afm.data import load_dataset
    from afm.studies import reproduce, results_table

    if args.dataset not in ("frappe", "movielens", "synthetic"):
        raise AFMError(f"reproduce takes frappe, movielens or synthetic, not {args.dataset!r}")
    dataset = load_dataset(args.dataset, args.data_dir)
    results = reproduce(dataset, quick=args.quick, device=args.device, studies=args.studies,
                        log=lambda line: print(line, file=sys.stderr), fm_dir=args.fm, epochs=args.epochs,
                        keep_models=args.keep_models, p_start=args.p_start,
                        afm_overrides=_tuning(args))
    out = args.out or f"results/{args.dataset}{'-quick' if args.quick else ''}.json"
    _write_json(results, out)
    comparison = {row["metric"]: row for row in results["comparison"]}["rmse"]
    print(results_table(results).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"AFM vs FM test RMSE: {comparison['relative']:+.1%} (95% interval of the difference "
          f"[{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]); {results['wall_seconds']:.0f}s on "
          f"{results['device']}; data: {dataset.notes or dataset.name}")
    print(f"wrote {out}")
    return 0


def _write_json(results: dict, out) -> None:
    from pathlib import Path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    tmp.replace(out)


def cmd_ablate(args) -> int:
    from afm.ablation import ablate, ablation_table, stability_table
    from afm.data import load_dataset

    if args.dataset not in ("frappe", "movielens", "synthetic"):
        raise AFMError(f"ablate takes frappe, movielens or synthetic, not {args.dataset!r}")
    dataset = load_dataset(args.dataset, args.data_dir)
    tuning = _tuning(args)
    results = ablate(dataset, quick=args.quick, device=args.device, log=lambda line: print(line, file=sys.stderr),
                     fm_dir=args.fm, epochs=args.epochs,
                     optimizer={k: tuning.pop(k) for k in ("optimizer", "lr")}, afm_overrides=tuning)
    out = args.out or f"results/ablation-{args.dataset}{'-quick' if args.quick else ''}.json"
    _write_json(results, out)
    columns = ["model", "test_rmse", "relative_vs_fm", "ci_low", "ci_high", "relative_entropy", "max_min_ratio", "cv"]
    print(ablation_table(results).reindex(columns=columns).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("explanation stability (Spearman of global pair importances):")
    print(stability_table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}")
    return 0


def cmd_bench(args) -> int:
    from afm.bench import headline_line, run

    results = run(quick=args.quick, data_dir=args.data_dir, log=lambda line: print(line, file=sys.stderr),
                  device=args.device)
    missing = {name: why for name, why in results["libraries"].items() if why}
    data = "; ".join(f"{k}: {v}" for k, v in results["data"].items())
    print(f"training on {results['device']}, torch threads {results['threads']}; medians of {results['windows']} "
          f"alternated windows of ~{results['window_seconds']} s; data: {data}")
    for name, why in missing.items():
        print(f"skipped {name} ({why}); pip install -r requirements-bench.txt")
    print("training samples/s (Adagrad, k=256, squared loss, no dropout):")
    print(results["training"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    fractions = ", ".join(f"batch {b}: {v:.2f}" for b, v in results["distinct_pair_fraction"].items())
    print(f"distinct feature pairs per (row, pair) cell, Frappe: {fractions}")
    print("peak memory of a process training the headline case (MB):")
    print(results["memory"].to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    ex = results["explanations"]
    print(f"explanations ({ex['data']}, {ex['test_rows']} test rows, k=t=256): one instance "
          f"{ex['one_instance_ms']:.1f} ms; every global statistic of the test split {ex['whole_test_split_s']:.2f} s")
    if args.app:
        from afm.bench_app import app_timings

        for name, seconds in app_timings(rounds=2 if args.quick else 5).items():
            print(f"app {name}: {seconds:.2f} s")
    print(headline_line(results))
    return 0


def cmd_datasets(args) -> int:
    from afm.data import dataset_status

    for row in dataset_status(args.data_dir):
        state = "available" if row["available"] else "missing  "
        hint = f"  get it with: {row['get']}" if row["get"] else ""
        print(f"{row['name']:<10} {state}  {row['where']}{hint}")
    return 0


def cmd_download(args) -> int:
    from afm.data import data_dir
    from afm.data.download import download

    download(args.name, data_dir(args.data_dir), mirror=args.mirror, force=args.force)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "explain": cmd_explain, "reproduce": cmd_reproduce,
            "ablate": cmd_ablate, "bench": cmd_bench, "datasets": cmd_datasets, "download": cmd_download}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


TRAINING_COMMANDS = ("train", "reproduce", "ablate", "bench")


def _run(args) -> int:
    if args.command in TRAINING_COMMANDS:
        retain_freed_memory()  # faster training at large batches; memory stays with the process (afm.allocator)
    try:
        return COMMANDS[args.command](args)
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
