"""`evaluate`, `explain`, `interactions` and `explain-function`: the commands that read saved models (or any
model as a TorchScript function)."""
from __future__ import annotations

import json
import sys

import numpy as np

from afm.cli.common import SPLITS, add_data_dir, add_table_flags, check_output_file, stderr_log, table_options
from afm.core.errors import AFMError
from afm.core.metrics import metrics_text
from afm.data import load_dataset
from afm.data.permuted import is_null, original_source
from afm.experiments.interaction_study import (
    agreement_table,
    interaction_study,
    noise_table,
    null_table,
    recovery_table,
    structure_table,
    truth_table,
)
from afm.experiments.results import write_results
from afm.explain.agreement import FAST_MEASURES, MEASURES, compare_models
from afm.explain.functions import function_interactions, load_torchscript
from afm.explain.interactions import instance_frame, instance_interactions, interactions, pair_strength
from afm.explain.parts import decompose, explain_split
from afm.explain.statistics import attention_spread, describe_spread, pair_statistics
from afm.models.inference import evaluate
from afm.store.importers import local_ids
from afm.store.modelsets import expand, member_name, set_of
from afm.training.workflows import load_with_data


def add(sub) -> None:
    e = sub.add_parser("evaluate", help="metrics of a saved model: RMSE (clipped to the label range) and MAE; AUC "
                       "on binary data; logloss for a logistic model")
    e.add_argument("model_dir")
    e.add_argument("--split", default="test", choices=SPLITS)
    e.add_argument("--json", action="store_true")
    add_data_dir(e)
    e.set_defaults(handler=cmd_evaluate)

    x = sub.add_parser("explain", help="field-pair attention over a split, or one instance's decomposition")
    x.add_argument("model_dir")
    x.add_argument("--split", default="test", choices=SPLITS)
    x.add_argument("--row", type=int, help="explain this instance of the split")
    x.add_argument("--json", action="store_true")
    add_data_dir(x)
    x.set_defaults(handler=cmd_explain)

    f = sub.add_parser("explain-function", help="which field pairs interact in any model, from its predictions alone: "
                       "a TorchScript module taking per-field ids (N, m), as `afm encode` writes them")
    f.add_argument("module", help="a TorchScript file (torch.jit.save): loads without running pickled code")
    f.add_argument("--data", required=True, help="the data, in our form; its rows are given to the module in per-field ids")
    f.add_argument("--split", default="test", choices=SPLITS)
    f.add_argument("--sample", type=int, default=2000, help="rows of the split, a seeded sample (0: every row)")
    f.add_argument("--references", type=int, default=16, help="reference rows per instance (R)")
    f.add_argument("--json", action="store_true")
    add_table_flags(f)
    add_data_dir(f)
    f.set_defaults(handler=cmd_explain_function)

    i = sub.add_parser("interactions", help="which field pairs matter, by four measures, and whether a set of "
                       "equally good models agrees")
    i.add_argument("models", nargs="+", metavar="MODEL_OR_SET", help="model directories and/or model sets")
    i.add_argument("--split", default="test", choices=SPLITS)
    i.add_argument("--sample", type=int, default=2000, help="rows of the split, a seeded sample (0: every row)")
    i.add_argument("--references", type=int, default=16, help="reference rows per instance (R)")
    i.add_argument("--top", type=int, default=3, help="a pair is robust when in the top K of every model (and of "
                   "every fresh draw, with --noise-draws)")
    i.add_argument("--null", nargs="+", metavar="NULL_MODEL_OR_SET", help="null models (train --permute-labels, "
                   "the same settings): each pair's strength beside the null's 10-90%% band, whether it beats the "
                   "null in every model, and the null's own agreement")
    i.add_argument("--reference-seed", type=int, help="seed of the reference draw (default: the sample's, 0)")
    i.add_argument("--draw-per-model", action="store_true", help="each model draws its own references (reference "
                   "seed + its index), so agreement is over models and draws")
    i.add_argument("--noise-draws", type=int, default=5, help="the noise ceiling: the first model against itself "
                   "over this many fresh draws of rows and references (0: none)")
    i.add_argument("--measures", default=",".join(FAST_MEASURES), help=f"comma-separated, of {', '.join(MEASURES)} "
                   "(h_statistic costs (fields + pairs) x 4,096 predictions a model)")
    i.add_argument("--json", action="store_true")
    i.add_argument("--out", metavar="FILE", help="a results file: each argument is a set, agreement within each "
                   "and across every two, planted-pair recovery (metrics only)")
    add_data_dir(i)
    i.set_defaults(handler=cmd_interactions)


def cmd_explain_function(args) -> int:
    dataset = load_dataset(args.data, args.data_dir, target=args.target, table=table_options(args))
    predict = load_torchscript(args.module)
    table = function_interactions(predict, local_ids(dataset, args.split), dataset.field_names,
                                  args.sample or None, args.references)
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_evaluate(args) -> int:
    loaded, dataset = load_with_data(args.model_dir, args.data_dir)
    metrics = evaluate(loaded.model, dataset, args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split}: {metrics_text(metrics)}  n {metrics['n']}")
    return 0


def cmd_explain(args) -> int:
    loaded, dataset = load_with_data(args.model_dir, args.data_dir)
    if not loaded.model.config.additive:  # no exact per-pair split: the pairs as the function reads them
        print(describe_spread({}, loaded.model.config), file=sys.stderr if args.json else sys.stdout)
        if args.row is not None:
            return _explain_row(args, loaded.model, dataset)
        table = pair_strength(interactions(loaded.model, dataset, args.split))  # a seeded 2,000-row sample
        table = table[["field_a", "field_b", "mean_abs_interaction", "share"]]
        print(table.to_json(orient="records") if args.json else
              table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return 0
    explanation = explain_split(loaded.model, dataset, args.split)
    spread_line = describe_spread(attention_spread(explanation), loaded.model.config)
    print(spread_line, file=sys.stderr if args.json else sys.stdout)
    if args.row is not None:
        return _explain_row(args, loaded.model, dataset)
    columns = ["field_a", "field_b", "mean_attention", "mean_abs_contribution"]
    table = pair_statistics(explanation)[columns]
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _explain_row(args, model, dataset) -> int:
    result = decompose(model, dataset, args.split, args.row)
    x = dataset.splits[args.split].x[args.row]
    if not result["additive"]:  # its pairs as the function reads them at this instance
        result["function_level"] = instance_interactions(model, dataset, x).tolist()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.split} row {args.row}: prediction {result['prediction']:+.4f}, label {result['label']:+.0f}")
    print(f"  bias {result['bias']:+.4f}")
    for term in result["first_order"]:
        print(f"  {term['feature']:<40} {term['value']:+.4f}")
    if not result["additive"]:  # the exact pair terms it has (DeepFM's FM part), the rest, the function's view
        print(f"  {'non-additive part':<40} {result['rest']:+.4f}")
        table = instance_frame(dataset, x, np.asarray(result["function_level"]), result)
        print(table.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
        return 0
    print(f"  {'pair':<60} {'attention':>9} {'interaction':>11} {'contribution':>12}")
    for p in result["pairs"]:
        label = f"{p['feature_a']} x {p['feature_b']}"
        print(f"  {label[:60]:<60} {p['attention']:>9.4f} {p['interaction']:>+11.4f} {p['contribution']:>+12.4f}")
    return 0


def _measures(text: str) -> tuple[str, ...]:
    chosen = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in chosen if m not in MEASURES]
    if unknown or not chosen:
        raise AFMError(f"--measures takes {', '.join(MEASURES)}, not {', '.join(unknown) or 'nothing'}")
    return chosen


def _load(paths, data_dir, dataset=None) -> tuple[dict, dict, object]:
    """Models by member name, their sets, and the data they were trained on (null data: the data it
    permutes, whose rows they are measured on)."""
    models, sets = {}, {}
    for path in expand(paths):
        loaded, data = load_with_data(path, data_dir)
        data = load_dataset(original_source(loaded.meta["data"]["source"]), data_dir) if is_null(
            loaded.meta["data"]["source"]) else data
        if dataset is not None and data.fingerprint != dataset.fingerprint:
            raise AFMError(f"{path} was trained on other data than the first model; compare models of one dataset")
        dataset = data
        name = member_name(path)
        models[name], sets[name] = loaded.model, set_of(path)
    return models, sets, dataset


def _by_measure(table, column: str) -> dict:
    return {} if table is None else dict(zip(table.measure, table[column]))


def cmd_interactions(args) -> int:
    check_output_file(args.out)
    if args.sample < 0 or not 1 <= args.references <= 1000 or args.top < 1 or not 0 <= args.noise_draws <= 50:
        raise AFMError("--sample takes 0 (every row) or more, --references 1 to 1000, --top 1 or more, "
                       "--noise-draws 0 to 50")
    if args.reference_seed is not None and args.reference_seed < 0:
        raise AFMError(f"--reference-seed takes 0 or more, not {args.reference_seed}")
    measures = _measures(args.measures)
    models, sets, dataset = _load(args.models, args.data_dir)
    null_models, null_sets = _load(args.null, args.data_dir, dataset)[:2] if args.null else (None, {})
    if args.out:
        return _interaction_study(args, models, sets, dataset, null_models or {}, null_sets, measures)
    comparison = compare_models(models, dataset, args.split, args.sample or None, args.references, args.top,
                                sets=sets, null_models=null_models, reference_seed=args.reference_seed,
                                draw_per_model=args.draw_per_model, noise_draws=args.noise_draws, measures=measures)
    if args.json:
        print(json.dumps({"bands": comparison.bands.to_dict(orient="records"),
                          "agreement": comparison.agreement.to_dict(orient="records"),
                          "accuracy": comparison.accuracy.to_dict(orient="records"),
                          "accuracy_note": comparison.accuracy_note,
                          "null_agreement": {m: {k: row[k] for k in ("trained", "null", "null_vs_trained")}
                                             for m, row in (comparison.null_agreement.set_index("measure").iterrows()
                                                            if comparison.null_agreement is not None else [])},
                          "structure_spearman": {m: {"cardinality_product": c, "impurity_product": i} for m, c, i in
                                                 zip(comparison.structure.measure,
                                                     comparison.structure.cardinality_product,
                                                     comparison.structure.impurity_product)},
                          "noise_ceiling": _by_measure(comparison.noise, "mean_spearman"),
                          "truth": [] if comparison.truth is None else comparison.truth.to_dict(orient="records"),
                          "families": [] if comparison.families is None else comparison.families.to_dict(orient="records")},
                         default=_json_default))
        return 0
    wide = comparison.bands.pivot_table(index=["field_a", "field_b"], columns="measure", values="median", sort=False)
    robust = comparison.bands.pivot_table(index=["field_a", "field_b"], columns="measure", values="robust",
                                          aggfunc="first", sort=False)
    wide = wide.sort_values("interaction", ascending=False).reset_index()
    for measure in robust.columns:
        wide[f"{measure} robust"] = [bool(robust.loc[(a, b), measure]) for a, b in zip(wide.field_a, wide.field_b)]
    rows = len(dataset.splits[args.split])
    measured = f"{args.sample:,} of {rows:,}" if args.sample and args.sample < rows else f"every one of {rows:,}"
    print(f"{dataset.name}, {args.split} split ({measured} rows, R={args.references}), "
          f"{len(models)} model(s); medians across models, strongest function-level interaction first:")
    print(wide.head(60).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(wide) > 60:
        print(f"({len(wide) - 60} more pairs; --json for all)")
    print("rank agreement across models (1: identical rankings):")
    print(comparison.agreement.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for name, table in (("against the null (mean Spearman: trained, null, null vs trained)", comparison.null_agreement),
                        ("against the data alone (Spearman with the fields' value-count and impurity products)",
                         comparison.structure),
                        ("noise ceiling (the first model against itself over fresh draws)", comparison.noise),
                        ("against the truth (the Bayes-optimal function's ranking)", comparison.truth),
                        ("across families (every model of one against every model of the other)", comparison.families)):
        if table is not None and not table.empty:
            print(name + ":")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for measure in measures:
        for warning in comparison.baseline_warnings(measure):
            print(f"{measure}: {warning}")
    print(comparison.accuracy_note)
    return 0


def _json_default(value):
    """numpy scalars and booleans as JSON numbers and booleans."""
    return value.item() if hasattr(value, "item") else str(value)


def _grouped(models: dict, sets: dict) -> dict:
    """Set name -> {member name: model}; a model outside a set is a set of its own."""
    grouped = {}
    for name, model in models.items():
        grouped.setdefault(sets[name] or name, {})[name.split("/")[-1]] = model
    return grouped


def _interaction_study(args, models, sets, dataset, null_models, null_sets, measures) -> int:
    results = interaction_study(_grouped(models, sets), dataset, args.split, args.sample or None, args.references,
                                args.top, log=stderr_log, nulls=_grouped(null_models, null_sets),
                                noise_draws=args.noise_draws, measures=measures)
    out = write_results(results, args.out)
    print("mean pairwise Spearman of the field-pair ranking, within each set and across every two (cross-set "
          "pairs only):")
    print(agreement_table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for title, table in (("against the null", null_table(results)), ("against the data alone", structure_table(results)),
                         ("noise ceiling", noise_table(results)), ("against the truth (Spearman over all pairs)",
                                                                   truth_table(results))):
        if not table.empty:
            print(title + ":")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    recovery = recovery_table(results)
    if not recovery.empty:
        print("planted pairs among each model's top pairs (mean over the set, worst model):")
        print(recovery.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"wrote {out}")
    return 0
