"""Command line: `python -m afm train|evaluate|explain|datasets|download ...`.

Every user-fixable problem ends with exit status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from afm import distributed, settings
from afm.allocator import retain_freed_memory
from afm.errors import AFMError
from afm.metrics import metrics_line, metrics_text
from afm.provenance import git_state

EXIT_USAGE = 2
TRAIN_SETTINGS = [s.name for s in settings.SETTINGS if s.name not in ("seed", "freeze_fm")]
TUNING_SETTINGS = ["optimizer", "lr", "attention_factor", "l2_attention", "dropout"]  # reproduce and ablate


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _add_tuning(p):
    settings.add_flags(p, TUNING_SETTINGS, "settings other than the paper's (choose them on validation, never test)")


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
    t.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    t.add_argument("--pretrain", metavar="FM_DIR", help="start AFM from this trained FM's embeddings")
    settings.add_flags(t, TRAIN_SETTINGS + ["freeze_fm"], "settings (default: the preset for the data)")
    t.add_argument("--seed", type=int, default=0, help=settings.BY_NAME["seed"].help + " (also of the data split)")
    t.add_argument("--seeds", type=int, metavar="N", help="train a model set: N models (seeds --seed .. --seed+N-1) "
                   "in --out/seed-S, named in --out/set.json; with --pretrain naming an FM set, AFM seed S starts "
                   "from FM seed S; members already saved are kept (resume)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(t)

    e = sub.add_parser("evaluate", help="metrics of a saved model: RMSE (clipped to the label range) and MAE; AUC "
                       "on binary data; logloss for a logistic model")
    e.add_argument("model_dir")
    e.add_argument("--split", default="test", choices=("train", "validation", "test"))
    e.add_argument("--json", action="store_true")
    _add_data_dir(e)

    im = sub.add_parser("import", help="turn a pytorch-fm or DeepCTR-Torch FM/AFM state dict into our model "
                        "directory, to explain it")
    im.add_argument("file", help="a state dict saved with torch.save(model.state_dict(), FILE)")
    im.add_argument("--from", dest="library", required=True, choices=("torchfm", "deepctr"))
    im.add_argument("--data", required=True, help="the data it was trained on, encoded as `python -m afm encode` "
                    "writes it: synthetic, frappe, movielens, a libfm directory or a CSV file")
    im.add_argument("--target", help="target column of a CSV file")
    im.add_argument("--out", help="model directory to write (default: the file's name in the models folder)")
    im.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    _add_data_dir(im)

    en = sub.add_parser("encode", help="write a dataset in per-field ids (what pytorch-fm and DeepCTR-Torch take), "
                        "so a model trained there imports exactly")
    en.add_argument("--data", required=True, help="synthetic, frappe, movielens, a libfm directory or a CSV file")
    en.add_argument("--target", help="target column of a CSV file")
    en.add_argument("--out", required=True, metavar="DIR", help="folder for train/validation/test.csv and "
                    "field_dims.json (outside the project for licensed data)")
    _add_data_dir(en)

    x = sub.add_parser("explain", help="field-pair attention over a split, or one instance's decomposition")
    x.add_argument("model_dir")
    x.add_argument("--split", default="test", choices=("train", "validation", "test"))
    x.add_argument("--row", type=int, help="explain this instance of the split")
    x.add_argument("--json", action="store_true")
    _add_data_dir(x)

    i = sub.add_parser("interactions", help="which field pairs matter, by four measures, and whether a set of "
                       "equally good models agrees")
    i.add_argument("models", nargs="+", metavar="MODEL_OR_SET", help="model directories and/or model sets")
    i.add_argument("--split", default="test", choices=("train", "validation", "test"))
    i.add_argument("--sample", type=int, default=2000, help="rows of the split, a seeded sample (0: every row)")
    i.add_argument("--references", type=int, default=16, help="reference rows per instance (R)")
    i.add_argument("--top", type=int, default=3, help="a pair is robust when in the top K of every model")
    i.add_argument("--json", action="store_true")
    i.add_argument("--out", metavar="FILE", help="a results file: each argument is a set, agreement within each "
                   "and across every two, planted-pair recovery (metrics only)")
    _add_data_dir(i)

    v = sub.add_parser("verdict", help="a fair FM vs AFM verdict: the same search budget for both, seeds, "
                       "uniform AFM and FM+A beside; a results file")
    v.add_argument("--dataset", required=True, help="frappe, movielens, synthetic or wide")
    v.add_argument("--configs", type=int, default=6, help="configurations searched on validation, per side")
    v.add_argument("--search-epochs", type=int, default=10, help="the epoch cap of every searched configuration")
    v.add_argument("--seeds", type=int, default=5, help="seeds of every final model")
    v.add_argument("--epochs", type=int, help="cap the final runs' epochs (default: the preset's, with early stopping)")
    v.add_argument("--quick", action="store_true", help="smaller k and fewer epochs: minutes on a 2-core CPU")
    v.add_argument("--models-dir", metavar="DIR", help="keep the final models here (and resume from them)")
    v.add_argument("--out", help="results file (default: results/verdict-DATASET[-LOSS][-kK][-quick].json)")
    settings.add_flags(v, ["device", "loss", "embed_dim"], "fixed for both sides, never searched")
    _add_data_dir(v)

    o = sub.add_parser("results", help="the committed results files as the README's tables")
    o.add_argument("--markdown", action="store_true", help="print every table in Markdown")
    o.add_argument("--update-readme", action="store_true", help="rewrite the README's generated blocks")

    r = sub.add_parser("reproduce", help="the paper's protocol: FM, then AFM from FM's embeddings; a results file")
    r.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    r.add_argument("--quick", action="store_true", help="smaller k and fewer epochs: minutes on a 2-core CPU")
    r.add_argument("--studies", action="store_true", help="also sweep t, lambda and dropout, and run FM+A")
    r.add_argument("--out", help="results file (default: results/DATASET[-quick].json)")
    r.add_argument("--fm", metavar="FM_DIR", help="reuse this trained FM instead of training one")
    r.add_argument("--epochs", type=int, help="cap the epochs (default: the paper's 100, with early stopping)")
    r.add_argument("--keep-models", metavar="DIR", help="also save the FM and AFM in this directory")
    settings.add_flags(r, ["p_start", "device"])
    _add_tuning(r)
    _add_data_dir(r)

    a = sub.add_parser("ablate", help="is it the attention? FM, uniform AFM, FM+A, AFM with and without lambda")
    a.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    a.add_argument("--quick", action="store_true", help="smaller k and fewer epochs: minutes on a 2-core CPU")
    a.add_argument("--out", help="results file (default: results/ablation-DATASET[-quick].json)")
    settings.add_flags(a, ["device"])
    a.add_argument("--fm", metavar="FM_DIR", help="start every AFM from this trained FM instead of training one")
    a.add_argument("--epochs", type=int, help="cap the epochs of every model")
    _add_tuning(a)
    _add_data_dir(a)

    b = sub.add_parser("bench", help="training speed beside DeepCTR-Torch and pytorch-fm; explanation latency; memory")
    b.add_argument("--quick", action="store_true", help="the main cases only, short windows: under 5 minutes")
    b.add_argument("--app", action="store_true", help="also time the app's page switches in headless Chromium")
    b.add_argument("--load", action="store_true", help="run beside one other busy process (a core taken, as by a "
                   "browser beside the app)")
    settings.add_flags(b, ["device"])
    _add_data_dir(b)

    d = sub.add_parser("datasets", help="what data is available here and how to get the rest")
    _add_data_dir(d)

    g = sub.add_parser("download", help="fetch Frappe or MovieLens files, checking their checksums")
    g.add_argument("name", choices=("frappe", "movielens"))
    g.add_argument("--mirror", help="base URL serving the same file names (instead of the original hosts)")
    g.add_argument("--force", action="store_true", help="download even files already present and valid")
    _add_data_dir(g)
    return parser


def check_output_dir(out: str, overwrite: bool) -> None:
    """Before any work: --out must be a place a model directory can be written."""
    from pathlib import Path

    from afm.checkpoints import is_model_dir

    path = Path(out)
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise AFMError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise AFMError(f"--out {out}: {parent} is not writable")
    if path.exists() or path.is_symlink():
        if not is_model_dir(path):
            raise AFMError(f"--out {out} exists and is not a model directory; choose another --out")
        if not overwrite:
            raise AFMError(f"--out {out} already holds a model; choose another --out or pass --overwrite")


def cmd_train(args) -> int:
    from afm.data import load_dataset
    from afm.workflows import train_and_save

    overrides = settings.from_args(args, TRAIN_SETTINGS + ["freeze_fm", "seed"])
    wrong = [settings.BY_NAME[n].cli_flag for n, v in overrides.items() if v is not None
             and not settings.applies(n, args.model)] + (["--pretrain"] if args.pretrain and args.model == "fm" else [])
    if wrong:
        raise AFMError(f"{', '.join(wrong)} apply to --model afm")
    for name, value in overrides.items():  # bad values are refused before the data is read
        if value is not None:
            settings.BY_NAME[name].check(value)
    if args.seeds is not None and not 1 <= args.seeds <= 100:
        raise AFMError(f"--seeds takes 1 to 100 models, not {args.seeds}")
    if args.seeds is None:
        check_output_dir(args.out, args.overwrite)
    dataset = load_dataset(args.data, args.data_dir, target=args.target, seed=args.seed)
    if args.seeds is not None:
        return _train_set(args, dataset, overrides)
    log = print if distributed.is_main() else (lambda *a, **k: None)
    log(f"{dataset.name}: {dataset.num_fields} fields, {dataset.num_features} features, "
        + ", ".join(f"{s} {len(p)}" for s, p in dataset.splits.items()))  # stdout: stderr is for the one error line
    if dataset.notes:
        log(f"note: {dataset.notes}")
    trained = train_and_save(dataset, args.model, args.out, overrides, args.pretrain, overwrite=args.overwrite,
                             show_progress=not args.quiet and sys.stderr.isatty())
    if not distributed.is_main():
        return 0  # rank 0 saves and reports
    if trained.diverged:
        raise AFMError(trained.divergence_message())
    result, path = trained.result, trained.path
    print(f"{args.model.upper()} best epoch {result.best_epoch} ({result.stop_reason}, {result.seconds:.1f}s on "
          f"{result.device}): {metrics_line(result.best_row)}")
    if args.model == "afm":
        from afm.checkpoints import read_meta
        from afm.statistics import describe_spread

        print(describe_spread(read_meta(path)["attention_spread"], "afm") + " (validation split)")
    print(f"saved {path}")
    return 0


def _train_set(args, dataset, overrides) -> int:
    from afm.modelsets import train_set

    print(f"{dataset.name}: a set of {args.seeds} {args.model.upper()} models in {args.out}")
    members = train_set(dataset, args.model, args.out, list(range(args.seed, args.seed + args.seeds)),
                        {k: v for k, v in overrides.items() if k != "seed"}, args.pretrain, log=print,
                        show_progress=not args.quiet and sys.stderr.isatty())
    print(f"saved the set {args.out} ({len(members)} models)")
    return 0


def cmd_import(args) -> int:
    from pathlib import Path

    from afm.data import load_dataset
    from afm.registry import new_model_path
    from afm.training import evaluate
    from afm.workflows import import_and_save

    dataset = load_dataset(args.data, args.data_dir, target=args.target)
    out = args.out or str(new_model_path(None, dataset.name, f"{args.library}-{Path(args.file).stem}"))
    check_output_dir(out, args.overwrite)
    path, model, notes = import_and_save(args.library, args.file, dataset, out, args.overwrite)
    for note in notes:
        print(f"note: {note}")
    print(f"imported an {model.config.kind.upper()} (k={model.config.embed_dim}, logistic loss) from {args.library}: "
          f"test {metrics_text(evaluate(model, dataset, 'test'))}; saved {path}")
    return 0


def cmd_encode(args) -> int:
    from afm.data import load_dataset
    from afm.importers import write_encoded

    dataset = load_dataset(args.data, args.data_dir, target=args.target)
    written = write_encoded(dataset, args.out)
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}: {dataset.num_fields} fields in per-field ids")
    return 0


def cmd_evaluate(args) -> int:
    from afm.training import evaluate
    from afm.workflows import load_with_data

    loaded, dataset = load_with_data(args.model_dir, args.data_dir)
    metrics = evaluate(loaded.model, dataset, args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split}: {metrics_text(metrics)}  n {metrics['n']}")
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


def cmd_interactions(args) -> int:
    from afm.agreement import compare_models
    from afm.modelsets import expand, member_name, set_of
    from afm.workflows import load_with_data

    if args.sample < 0 or not 1 <= args.references <= 1000 or args.top < 1:
        raise AFMError("--sample takes 0 (every row) or more, --references 1 to 1000, --top 1 or more")
    models, sets, dataset = {}, {}, None
    for path in expand(args.models):
        loaded, data = load_with_data(path, args.data_dir)
        if dataset is not None and data.fingerprint != dataset.fingerprint:
            raise AFMError(f"{path} was trained on other data than {next(iter(models))}; compare models of one dataset")
        dataset = data
        name = member_name(path)
        models[name], sets[name] = loaded.model, set_of(path)
    if args.out:
        return _interaction_study(args, models, sets, dataset)
    comparison = compare_models(models, dataset, args.split, args.sample or None, args.references, args.top,
                                sets=sets)
    if args.json:
        print(json.dumps({"bands": comparison.bands.to_dict(orient="records"),
                          "agreement": comparison.agreement.to_dict(orient="records"),
                          "accuracy": comparison.accuracy.to_dict(orient="records"),
                          "accuracy_note": comparison.accuracy_note}))
        return 0
    wide = comparison.bands.pivot_table(index=["field_a", "field_b"], columns="measure", values="median", sort=False)
    robust = comparison.bands.pivot_table(index=["field_a", "field_b"], columns="measure", values="robust",
                                          aggfunc="first", sort=False)
    wide = wide.sort_values("interaction", ascending=False).reset_index()
    for measure in robust.columns:
        wide[f"{measure} robust"] = [bool(robust.loc[(a, b), measure]) for a, b in zip(wide.field_a, wide.field_b)]
    print(f"{dataset.name}, {args.split} split ({args.sample or 'every'} rows, R={args.references}), "
          f"{len(models)} model(s); medians across models, strongest function-level interaction first:")
    print(wide.head(60).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(wide) > 60:
        print(f"({len(wide) - 60} more pairs; --json for all)")
    print("rank agreement across models (1: identical rankings):")
    print(comparison.agreement.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(comparison.accuracy_note)
    return 0


def _interaction_study(args, models, sets, dataset) -> int:
    from afm.experiments.interaction_study import agreement_table, interaction_study, recovery_table
    from afm.experiments.results import write_results

    grouped = {}
    for name, model in models.items():
        grouped.setdefault(sets[name] or name, {})[name.split("/")[-1]] = model
    results = interaction_study(grouped, dataset, args.split, args.sample or None, args.references, args.top,
                                log=lambda line: print(line, file=sys.stderr))
    out = write_results(results, args.out)
    print("mean pairwise Spearman of the field-pair ranking, within each set and across every two:")
    print(agreement_table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    recovery = recovery_table(results)
    if not recovery.empty:
        print("planted pairs among each model's top pairs (mean over the set, worst model):")
        print(recovery.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"wrote {out}")
    return 0


def cmd_verdict(args) -> int:
    from afm.data import load_dataset
    from afm.experiments.results import write_results
    from afm.experiments.verdict import verdict, verdict_sentence

    if args.dataset not in ("frappe", "movielens", "synthetic", "wide"):
        raise AFMError(f"verdict takes frappe, movielens, synthetic or wide, not {args.dataset!r}")
    if not (1 <= args.configs <= 100 and 1 <= args.search_epochs <= 1000 and 1 <= args.seeds <= 100):
        raise AFMError("--configs takes 1 to 100, --search-epochs 1 to 1000, --seeds 1 to 100")
    dataset = load_dataset(args.dataset, args.data_dir)
    fixed = {name: getattr(args, name) for name in ("loss", "embed_dim") if getattr(args, name) is not None}
    results = verdict(dataset, args.configs, args.search_epochs, args.seeds, args.epochs, args.quick,
                      args.device or "auto", args.models_dir, log=lambda line: print(line, file=sys.stderr), fixed=fixed)
    stem = "-".join([f"verdict-{args.dataset}"] + ([fixed["loss"]] if "loss" in fixed else [])
                    + ([f"k{fixed['embed_dim']}"] if "embed_dim" in fixed else []) + (["quick"] if args.quick else []))
    out = write_results(results, args.out or f"results/{stem}.json")
    print(verdict_sentence(results))
    print(f"wrote {out}")
    return 0


def cmd_results(args) -> int:
    from afm.experiments.results import ROOT, results_markdown, update_readme

    if args.update_readme:
        done = update_readme(ROOT / "README.md")
        print(f"README.md: {len(done)} block(s) regenerated ({', '.join(done) or 'none'})")
        return 0
    for stem, text in results_markdown().items():
        print(f"<!-- results:{stem} -->\n{text}\n<!-- /results -->\n")
    return 0


def cmd_reproduce(args) -> int:
    from afm.data import load_dataset
    from afm.experiments.reproduce import reproduce
    from afm.experiments.results import results_table, write_results

    if args.dataset not in ("frappe", "movielens", "synthetic"):
        raise AFMError(f"reproduce takes frappe, movielens or synthetic, not {args.dataset!r}")
    dataset = load_dataset(args.dataset, args.data_dir)
    results = reproduce(dataset, quick=args.quick, device=args.device or "auto", studies=args.studies,
                        log=lambda line: print(line, file=sys.stderr), fm_dir=args.fm, epochs=args.epochs,
                        keep_models=args.keep_models, p_start=args.p_start or "ones",
                        afm_overrides=settings.from_args(args, TUNING_SETTINGS))
    out = write_results(results, args.out or f"results/{args.dataset}{'-quick' if args.quick else ''}.json")
    comparison = {row["metric"]: row for row in results["comparison"]}["rmse"]
    print(results_table(results).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"AFM vs FM test RMSE: {comparison['relative']:+.1%} (95% interval of the difference "
          f"[{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]); {results['wall_seconds']:.0f}s on "
          f"{results['device']}; data: {dataset.notes or dataset.name}")
    print(f"wrote {out}")
    return 0


def cmd_ablate(args) -> int:
    from afm.data import load_dataset
    from afm.experiments.ablation import ablate
    from afm.experiments.results import ablation_table, stability_table, write_results

    if args.dataset not in ("frappe", "movielens", "synthetic"):
        raise AFMError(f"ablate takes frappe, movielens or synthetic, not {args.dataset!r}")
    dataset = load_dataset(args.dataset, args.data_dir)
    tuning = settings.from_args(args, TUNING_SETTINGS)
    results = ablate(dataset, quick=args.quick, device=args.device or "auto", log=lambda line: print(line, file=sys.stderr),
                     fm_dir=args.fm, epochs=args.epochs,
                     optimizer={k: tuning.pop(k) for k in ("optimizer", "lr")}, afm_overrides=tuning)
    out = write_results(results, args.out or f"results/ablation-{args.dataset}{'-quick' if args.quick else ''}.json")
    columns = ["model", "test_rmse", "relative_vs_fm", "ci_low", "ci_high", "relative_entropy", "max_min_ratio", "cv"]
    print(ablation_table(results).reindex(columns=columns).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("explanation stability (Spearman of global pair importances):")
    print(stability_table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}")
    return 0


def cmd_bench(args) -> int:
    from afm.bench import headline_line, run
    from afm.bench.load import busy_process

    with busy_process(args.load):
        return _bench(args, headline_line, run)


def _bench(args, headline_line, run) -> int:
    if args.load:
        print("beside one other busy process (--load)")
    results = run(quick=args.quick, data_dir=args.data_dir, log=lambda line: print(line, file=sys.stderr),
                  device=args.device or "auto")
    missing = {name: why for name, why in results["libraries"].items() if why}
    data = "; ".join(f"{k}: {v}" for k, v in results["data"].items())
    print(f"training on {results['device']}, torch threads {results['threads']}; medians of {results['windows']} "
          f"alternated windows of ~{results['window_seconds']} s; data: {data}")
    for name, why in missing.items():
        print(f"skipped {name} ({why}); pip install -r requirements-bench.txt")
    print("training samples/s (Adagrad, squared loss, no dropout; peers at their best configuration, and as "
          "shipped: plain Adagrad on dense gradients):")
    print(results["training"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    fractions = ", ".join(f"batch {b}: {v:.2f}" for b, v in results["distinct_pair_fraction"].items())
    print(f"distinct feature pairs per (row, pair) cell, Frappe: {fractions}")
    print("peak memory of a process training the headline case (MB):")
    print(results["memory"].to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    ex = results["explanations"]
    print(f"explanations ({ex['data']}, {ex['test_rows']} test rows, k=t=256): one instance "
          f"{ex['one_instance_ms']:.1f} ms; every global statistic of the test split {ex['whole_test_split_s']:.2f} s")
    print(f"function-level interactions (every field pair, R=16): a 2,000-row sample "
          f"{ex['interactions_2000_rows_s']:.2f} s; the whole test split {ex['interactions_whole_split_s']:.1f} s")
    if args.app:
        from afm.bench.app import app_timings

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


COMMANDS = {"train": cmd_train, "import": cmd_import, "encode": cmd_encode, "evaluate": cmd_evaluate, "explain": cmd_explain, "interactions": cmd_interactions, "results": cmd_results,
            "verdict": cmd_verdict, "reproduce": cmd_reproduce,
            "ablate": cmd_ablate, "bench": cmd_bench, "datasets": cmd_datasets, "download": cmd_download}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes: the checks say what matters
        return _run(args)


TRAINING_COMMANDS = ("train", "reproduce", "ablate", "bench", "verdict")


def _run(args) -> int:
    git_state()  # the commit of the code this process loaded, before anything can change the checkout
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
