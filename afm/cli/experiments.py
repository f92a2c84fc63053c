"""`verdict`, `families`, `reproduce`, `ablate` and `results`: the experiments that write results files, and their tables."""
from __future__ import annotations

import json
import sys

from afm.cli.common import add_data_dir, add_setting_flags, check_output_file, setting_values, stderr_log
from afm.core.errors import AFMError
from afm.data import load_dataset
from afm.experiments.ablation import ablate
from afm.experiments.crosses import BUDGET, crosses
from afm.experiments.families import families_markdown, family_table
from afm.experiments.reproduce import reproduce
from afm.experiments.results import ablation_table, committed_results, results_table, stability_table, write_results
from afm.experiments.tables import DOCS_RESULTS, crosses_table, results_markdown, write_docs
from afm.experiments.tuning import SearchBudget
from afm.experiments.verdict import verdict, verdict_sentence
from afm.models.families import family
from afm.store.modelsets import expand, member_name
from afm.training.workflows import load_with_data

TUNING_SETTINGS = ["optimizer", "lr", "attention_factor", "l2_attention", "dropout"]  # reproduce and ablate
QUICK_HELP = "smaller k and fewer epochs: minutes on a 2-core CPU"


def _add_tuning(p) -> None:
    add_setting_flags(p, TUNING_SETTINGS, "settings other than the paper's (choose them on validation, never test)")


def _add_search_flags(p) -> None:
    """The flags of an experiment that searches with the verdict's budget, then trains seeds."""
    p.add_argument("--dataset", required=True, help="frappe, movielens, synthetic or wide")
    p.add_argument("--trials", type=int, default=SearchBudget.trials, help="trials of each search (TPE, pruned by "
                   "successive halving on validation)")
    p.add_argument("--epoch-cap", type=int, default=SearchBudget.epoch_cap, help="each trial's epoch cap; a chosen "
                   "configuration at its cap is trained again with the cap doubled")
    p.add_argument("--epoch-budget", type=int, help="epochs each search may spend in all (default: trials x cap / 2)")
    p.add_argument("--seeds", type=int, default=5, help="seeds of every chosen configuration")
    p.add_argument("--models-dir", metavar="DIR", help="keep the search journal and the final models here (and "
                   "resume from them)")


def _search_setup(args, command: str) -> tuple:
    """(dataset, fixed settings, budget, the default file stem) of a searching experiment, its flags checked."""
    check_output_file(args.out)
    _dataset_among(args.dataset, command, ("frappe", "movielens", "synthetic", "wide"))
    if not (1 <= args.trials <= 500 and 1 <= args.epoch_cap <= 1000 and 1 <= args.seeds <= 100
            and (args.epoch_budget is None or 1 <= args.epoch_budget <= 10**6)):
        raise AFMError("--trials takes 1 to 500, --epoch-cap 1 to 1000, --epoch-budget 1 to 1000000, --seeds 1 to 100")
    dataset = load_dataset(args.dataset, args.data_dir)
    fixed = {name: getattr(args, name) for name in ("loss", "embed_dim") if getattr(args, name) is not None}
    stem = "-".join([f"{command}-{args.dataset}"] + ([fixed["loss"]] if "loss" in fixed else [])
                    + ([f"k{fixed['embed_dim']}"] if "embed_dim" in fixed else []))
    return dataset, fixed, SearchBudget(args.trials, args.epoch_cap, args.epoch_budget), stem


def add(sub) -> None:
    v = sub.add_parser("verdict", help="a fair FM vs AFM verdict: FM, AFM from the chosen FM and AFM from scratch "
                       "tuned with one budget (Optuna), seeds, FM given AFM's epochs, uniform AFM and FM+A beside; "
                       "a results file")
    _add_search_flags(v)
    v.add_argument("--no-variants", dest="variants", action="store_false", help="leave out uniform AFM and FM+A")
    v.add_argument("--quick", action="store_true", help=QUICK_HELP)
    v.add_argument("--out", help="results file (default: results/verdict-DATASET[-LOSS][-kK][-quick].json)")
    add_setting_flags(v, ["device", "loss", "embed_dim"], "fixed for both sides, never searched")
    add_data_dir(v)
    v.set_defaults(handler=cmd_verdict)

    f = sub.add_parser("families", help="every family tuned with the verdict's search and budget, then seeds of each "
                       "choice read on test, beside the same data's verdict and the BARS leaderboard; a results file")
    _add_search_flags(f)
    f.add_argument("--families", default="deepfm,dcn,autoint,nfm", metavar="NAME,...",
                   help="the families, in the order they run (FM and AFM come from the verdict of the same budget)")
    f.add_argument("--out", help="results file (default: results/families-DATASET[-LOSS][-kK].json)")
    add_setting_flags(f, ["device", "loss", "embed_dim"], "fixed for every family, never searched")
    add_data_dir(f)
    f.set_defaults(handler=cmd_families)

    c = sub.add_parser("crosses", help="do the pairs a measure names help a model? Each measure's top-K pairs as "
                       "crossed fields in a first-order model, and masked in an FM, against random pairs")
    c.add_argument("models", nargs="+", metavar="MODEL_OR_SET", help="the models whose pair ranking is checked")
    c.add_argument("--k", default="1,3,5", help="comma-separated numbers of top pairs (default 1,3,5)")
    c.add_argument("--seeds", type=int, default=3, help="seeds of every retrained model, for the spread")
    c.add_argument("--sample", type=int, default=2000, help="train rows the ranking is measured on")
    c.add_argument("--epochs", type=int, help=f"the fixed budget's epochs (default {BUDGET['epochs']}, with patience "
                   f"{BUDGET['patience']})")
    c.add_argument("--batch-size", type=int, help=f"the fixed budget's batch (default {BUDGET['batch_size']})")
    c.add_argument("--json", action="store_true", help="the summary rows as JSON")
    c.add_argument("--out", metavar="FILE", help="also write a results file")
    add_data_dir(c)
    c.set_defaults(handler=cmd_crosses)

    o = sub.add_parser("results", help="the committed results files as Markdown tables (docs/results)")
    o.add_argument("--markdown", action="store_true", help="print every table in Markdown")
    o.add_argument("--update-docs", action="store_true", help=f"rewrite the generated pages in {DOCS_RESULTS.parent.name}/"
                   f"{DOCS_RESULTS.name}")
    o.add_argument("--update-readme", dest="update_docs", action="store_true",
                   help="the same as --update-docs (the tables moved from the README to docs/results)")
    o.set_defaults(handler=cmd_results)

    r = sub.add_parser("reproduce", help="the paper's protocol: FM, then AFM from FM's embeddings; a results file")
    r.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    r.add_argument("--quick", action="store_true", help=QUICK_HELP)
    r.add_argument("--studies", action="store_true", help="also sweep t, lambda and dropout, and run FM+A")
    r.add_argument("--out", help="results file (default: results/DATASET[-quick].json)")
    r.add_argument("--fm", metavar="FM_DIR", help="reuse this trained FM instead of training one")
    r.add_argument("--epochs", type=int, help="cap the epochs (default: the paper's 100, with early stopping)")
    r.add_argument("--keep-models", metavar="DIR", help="also save the FM and AFM in this directory")
    add_setting_flags(r, ["p_start", "device"])
    _add_tuning(r)
    add_data_dir(r)
    r.set_defaults(handler=cmd_reproduce)

    a = sub.add_parser("ablate", help="is it the attention? FM, uniform AFM, FM+A, AFM with and without lambda")
    a.add_argument("--dataset", required=True, help="frappe, movielens or synthetic")
    a.add_argument("--quick", action="store_true", help=QUICK_HELP)
    a.add_argument("--out", help="results file (default: results/ablation-DATASET[-quick].json)")
    add_setting_flags(a, ["device"])
    a.add_argument("--fm", metavar="FM_DIR", help="start every AFM from this trained FM instead of training one")
    a.add_argument("--epochs", type=int, help="cap the epochs of every model")
    _add_tuning(a)
    add_data_dir(a)
    a.set_defaults(handler=cmd_ablate)


def _dataset_among(name: str, command: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        raise AFMError(f"{command} takes {', '.join(allowed[:-1])} or {allowed[-1]}, not {name!r}")


def cmd_verdict(args) -> int:
    dataset, fixed, budget, stem = _search_setup(args, "verdict")
    out = args.out or f"results/{stem}{'-quick' if args.quick else ''}.json"
    results = verdict(dataset, budget, args.seeds, args.quick, args.device or "auto", args.models_dir,
                      log=stderr_log, fixed=fixed, variants=args.variants,
                      on_stage=lambda partial: write_results(partial, out))  # a long run leaves what it has
    out = write_results(results, out)
    print(verdict_sentence(results))
    print(f"wrote {out}")
    return 0


def cmd_families(args) -> int:
    kinds = [name.strip() for name in args.families.split(",") if name.strip()]
    for kind in kinds:
        family(kind)  # an unknown name is refused before anything trains
    if not kinds or len(set(kinds)) != len(kinds):
        raise AFMError("--families takes distinct family names, comma-separated")
    dataset, fixed, budget, stem = _search_setup(args, "families")
    out = args.out or f"results/{stem}.json"
    results = family_table(dataset, kinds, budget, args.seeds,
                           fixed, args.device or "auto", args.models_dir, log=stderr_log,
                           on_family=lambda partial: write_results(partial, out))  # a long run keeps each family
    out = write_results(results, out)
    print(families_markdown(results))
    print(f"wrote {out}")
    return 0


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in text.split(",") if k.strip()}))
    except ValueError:
        raise AFMError(f"--k takes comma-separated whole numbers, not {text!r}") from None
    if not ks:
        raise AFMError("--k takes at least one number of pairs")
    return ks


def cmd_crosses(args) -> int:
    check_output_file(args.out)
    ks = _ks(args.k)
    if not 1 <= args.seeds <= 20 or args.sample < 10 or (args.epochs is not None and not 1 <= args.epochs <= 1000):
        raise AFMError("--seeds takes 1 to 20, --sample 10 or more, --epochs 1 to 1000")
    models, dataset = {}, None
    for path in expand(args.models):
        loaded, data = load_with_data(path, args.data_dir)
        if dataset is not None and data.fingerprint != dataset.fingerprint:
            raise AFMError(f"{path} was trained on other data than the first model; use models of one dataset")
        dataset, models[member_name(path)] = data, loaded.model
    if args.batch_size is not None and args.batch_size < 1:
        raise AFMError(f"--batch-size takes 1 or more, not {args.batch_size}")
    budget = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    results = crosses(models, dataset, ks, args.seeds, args.sample, budget=budget, log=stderr_log)
    table = crosses_table(results)
    if args.json:
        print(json.dumps(results["summary"]))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    if args.out:
        print(f"wrote {write_results(results, args.out)}")
    stderr_log(f"{results['wall_seconds']:.0f}s for {len(results['runs'])} runs")
    return 0


def cmd_results(args) -> int:
    problems: list[str] = []
    committed_results(problems=problems)
    for problem in problems:
        print(f"warning: results/{problem}", file=sys.stderr)
    if args.update_docs:
        done = write_docs()
        print(f"{DOCS_RESULTS.parent.name}/{DOCS_RESULTS.name}: {len(done)} page(s) regenerated ({', '.join(done) or 'none'})")
        return 0
    for stem, text in results_markdown().items():
        print(f"<!-- results:{stem} -->\n{text}\n<!-- /results -->\n")
    return 0


def cmd_reproduce(args) -> int:
    check_output_file(args.out)
    _dataset_among(args.dataset, "reproduce", ("frappe", "movielens", "synthetic"))
    dataset = load_dataset(args.dataset, args.data_dir)
    results = reproduce(dataset, quick=args.quick, device=args.device or "auto", studies=args.studies,
                        log=stderr_log, fm_dir=args.fm, epochs=args.epochs,
                        keep_models=args.keep_models, p_start=args.p_start or "ones",
                        afm_overrides=setting_values(args, TUNING_SETTINGS))
    out = write_results(results, args.out or f"results/{args.dataset}{'-quick' if args.quick else ''}.json")
    comparison = {row["metric"]: row for row in results["comparison"]}["rmse"]
    print(results_table(results).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"AFM vs FM test RMSE: {comparison['relative']:+.1%} (95% interval of the difference "
          f"[{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]); {results['wall_seconds']:.0f}s on "
          f"{results['device']}; data: {dataset.notes or dataset.name}")
    print(f"wrote {out}")
    return 0


def cmd_ablate(args) -> int:
    check_output_file(args.out)
    _dataset_among(args.dataset, "ablate", ("frappe", "movielens", "synthetic"))
    dataset = load_dataset(args.dataset, args.data_dir)
    tuning = setting_values(args, TUNING_SETTINGS)
    results = ablate(dataset, quick=args.quick, device=args.device or "auto", log=stderr_log,
                     fm_dir=args.fm, epochs=args.epochs,
                     optimizer={k: tuning.pop(k) for k in ("optimizer", "lr")}, afm_overrides=tuning)
    out = write_results(results, args.out or f"results/ablation-{args.dataset}{'-quick' if args.quick else ''}.json")
    columns = ["model", "test_rmse", "relative_vs_fm", "ci_low", "ci_high", "relative_entropy", "max_min_ratio", "cv"]
    print(ablation_table(results).reindex(columns=columns).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("explanation stability (Spearman of global pair importances):")
    print(stability_table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}")
    return 0
