"""`train`, `import` and `encode`: the commands that make a model directory or the data for one."""
from __future__ import annotations

import sys
from pathlib import Path

from afm.cli.common import (add_data_dir, add_setting_flags, add_table_flags, check_output_dir, check_output_folder,
                            setting_values, table_options)
from afm.core import settings
from afm.core.errors import AFMError
from afm.core.metrics import metrics_line, metrics_text
from afm.data import load_dataset
from afm.data.permuted import permute_labels
from afm.explain.statistics import describe_spread
from afm.fast.allocator import return_freed_memory
from afm.models import AFM_KIND
from afm.models.families import FAMILIES, family, taking
from afm.models.inference import evaluate
from afm.store.checkpoints import read_meta
from afm.store.importers import LIBRARIES, write_encoded, write_vocab
from afm.store.registry import new_model_path
from afm.training import distributed
from afm.training.sets import train_set
from afm.training.workflows import held_out_known, import_and_save, train_and_save

TRAIN_SETTINGS = [s.name for s in settings.SETTINGS if s.name not in ("seed", "freeze_fm")]
DATA_HELP = "synthetic, wide, frappe, movielens, a libfm directory, or a CSV, TSV or parquet file"


def add(sub) -> None:
    t = sub.add_parser("train", help="train a model of any family and save the model directory")
    t.add_argument("--data", default="synthetic", help=DATA_HELP)
    t.add_argument("--model", choices=tuple(FAMILIES), default=AFM_KIND,
                   help="; ".join(f"{f.name}: {f.summary}" for f in FAMILIES.values()))
    t.add_argument("--out", required=True, help="model directory to write")
    add_table_flags(t)
    t.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    t.add_argument("--pretrain", metavar="DIR", help="start from this trained model's embeddings (AFM from an FM)")
    add_setting_flags(t, TRAIN_SETTINGS + ["freeze_fm"], "settings (default: the preset for the data)")
    t.add_argument("--seed", type=int, default=0, help=settings.BY_NAME["seed"].help + " (also of the data split)")
    t.add_argument("--seeds", type=int, metavar="N", help="train a model set: N models (seeds --seed .. --seed+N-1) "
                   "in --out/seed-S, named in --out/set.json; with --pretrain naming a set, seed S starts "
                   "from that set's seed S; members already saved are kept (resume)")
    t.add_argument("--permute-labels", action="store_true", help="a null model: the same settings trained on the "
                   "data with its train and validation labels permuted (seeded by --seed; in a set, by each member's "
                   "seed), the baseline an explanation must beat (afm interactions --null)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_dir(t)
    t.set_defaults(handler=cmd_train)

    im = sub.add_parser("import", help="turn a pytorch-fm or DeepCTR-Torch state dict (FM, AFM, DeepFM, NFM; "
                        "DeepCTR-Torch's DCN-v2 and AutoInt too) into our model directory, to explain it")
    im.add_argument("file", help="a state dict saved with torch.save(model.state_dict(), FILE)")
    im.add_argument("--from", dest="library", required=True, choices=LIBRARIES)
    im.add_argument("--data", required=True, help="the data it was trained on, encoded as `python -m afm encode` "
                    f"writes it: {DATA_HELP}")
    im.add_argument("--vocab", metavar="FILE", help="the vocabulary it was trained with: JSON mapping each field to its "
                    "values in id order (LabelEncoder.classes_; the folder `afm encode` wrote holds one)")
    im.add_argument("--model", choices=[f.name for f in FAMILIES.values() if f.takes("embed_dim")], help="the family, where the keys "
                    "do not say it (pytorch-fm's and DeepCTR-Torch's DeepFM have Wide&Deep's keys); else checked")
    im.add_argument("--attention-heads", type=int, metavar="N", help="an AutoInt's heads per layer (not in a state "
                    "dict; DeepCTR-Torch's default is 2)")
    im.add_argument("--check", metavar="FILE", help="a CSV of rows (a column per field, the values as in the data) "
                    "with its logit (or probability) per row: the import must reproduce them")
    add_table_flags(im)
    im.add_argument("--out", help="model directory to write (default: the file's name in the models folder)")
    im.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    add_data_dir(im)
    im.set_defaults(handler=cmd_import)

    en = sub.add_parser("encode", help="write a dataset in per-field ids (what pytorch-fm and DeepCTR-Torch take), "
                        "so a model trained there imports exactly")
    en.add_argument("--data", required=True, help=DATA_HELP)
    add_table_flags(en)
    en.add_argument("--out", required=True, metavar="DIR", help="folder for train/validation/test.csv and "
                    "field_dims.json (outside the project for licensed data)")
    add_data_dir(en)
    en.set_defaults(handler=cmd_encode)


UNTRAINED_EXIT = 3  # saved, but no epoch beat the initialisation: scripts must not take it as trained


def _log(*args, **kwargs) -> None:
    if distributed.is_main():  # under torchrun, rank 0 alone reports
        print(*args, **kwargs)


def cmd_train(args) -> int:
    chosen = family(args.model)
    overrides = setting_values(args, TRAIN_SETTINGS + ["freeze_fm", "seed"])
    wrong = [n for n, v in overrides.items() if v is not None and not chosen.takes(n)]
    flags, takers = [settings.BY_NAME[n].cli_flag for n in wrong], {f.name for n in wrong for f in taking(n)}
    if args.pretrain and chosen.starts_from is None:
        flags.append("--pretrain")
        takers |= {f.name for f in FAMILIES.values() if f.starts_from}
    if flags:
        raise AFMError(f"{', '.join(flags)} apply to --model {' or '.join(sorted(takers))}, not {chosen.name}")
    for name, value in overrides.items():  # bad values are refused before the data is read
        if value is not None:
            settings.BY_NAME[name].check(value)
    if args.seeds is not None and not 1 <= args.seeds <= 100:
        raise AFMError(f"--seeds takes 1 to 100 models, not {args.seeds}")
    if args.seeds is None:
        check_output_dir(args.out, args.overwrite)
    else:
        check_output_folder(args.out)
    dataset = load_dataset(args.data, args.data_dir, target=args.target, seed=args.seed, table=table_options(args))
    if dataset.streamed:
        return_freed_memory()  # a click log read in chunks: memory bounded, not kept at its peak
    if args.seeds is not None:
        return _train_set(args, dataset, overrides)
    if args.permute_labels:
        dataset = permute_labels(dataset, args.seed)
    _log(f"{dataset.name}: {dataset.num_fields} fields, {dataset.num_features} features, "
         + ", ".join(f"{s} {len(p)}" for s, p in dataset.splits.items()))  # stdout: stderr is for the one error line
    for note in dataset.notes.split("; ") if dataset.notes else []:
        _log(f"note: {note}")  # one line each: the rows and target, then every column decision
    trained = train_and_save(dataset, args.model, args.out, overrides, args.pretrain, overwrite=args.overwrite,
                             show_progress=not args.quiet and sys.stderr.isatty())
    if not distributed.is_main():
        return 0  # rank 0 saves and reports
    if trained.diverged:
        raise AFMError(trained.divergence_message())
    result, path = trained.result, trained.path
    print(f"{chosen.label}{' (null: labels permuted)' if args.permute_labels else ''} best epoch {result.best_epoch} ({result.stop_reason}, {result.seconds:.1f}s on "
          f"{result.device}): {metrics_line(result.best_row)}")
    chosen_threads = result.extra.get("threads")  # CPU runs only
    print(f"time: steps {result.extra['step_seconds']:.1f}s, evaluation {result.extra['evaluation_seconds']:.1f}s "
          f"(train metrics on {result.extra['train_metrics_rows']:,} rows, validation whole)"
          + (f"; threads {chosen_threads['count']} ({chosen_threads['reason']})" if chosen_threads else ""))
    spread = read_meta(path).get("attention_spread")
    if spread is not None:
        print(describe_spread(spread, trained.model.config) + " (validation split)")
    print(f"saved {path}")
    if trained.untrained:
        print(f"afm: {trained.untrained_message()}", file=sys.stderr)
        return UNTRAINED_EXIT
    return 0


def _train_set(args, dataset, overrides) -> int:
    null = " null" if args.permute_labels else ""
    print(f"{dataset.name}: a{null} set of {args.seeds} {family(args.model).label} models in {args.out}")
    members = train_set(dataset, args.model, args.out, list(range(args.seed, args.seed + args.seeds)),
                        {k: v for k, v in overrides.items() if k != "seed"}, args.pretrain, log=print,
                        null=args.permute_labels, show_progress=not args.quiet and sys.stderr.isatty())
    print(f"saved the set {args.out} ({len(members)} models)")
    untrained = [m.name for m in members if read_meta(m).get("untrained")]
    if untrained:
        print(f"afm: {', '.join(untrained)}: training never beat the untrained model on validation (best epoch 0)",
              file=sys.stderr)
        return UNTRAINED_EXIT
    return 0


def cmd_import(args) -> int:
    dataset = load_dataset(args.data, args.data_dir, target=args.target, table=table_options(args))
    out = args.out or str(new_model_path(None, dataset.name, f"{args.library}-{Path(args.file).stem}"))
    check_output_dir(out, args.overwrite)
    path, model, notes = import_and_save(args.library, args.file, dataset, out, args.overwrite, vocab=args.vocab,
                                         check=args.check, kind=args.model, heads=args.attention_heads)
    for note in notes:
        print(f"note: {note}")
    where = "test" if held_out_known(dataset) else "our test split (may include its training rows)"
    print(f"imported {model.config.label} ({model.config.describe()}, logistic loss) from {args.library}: "
          f"{where} {metrics_text(evaluate(model, dataset, 'test'))}; saved {path}")
    return 0


def cmd_encode(args) -> int:
    check_output_folder(args.out)
    dataset = load_dataset(args.data, args.data_dir, target=args.target, table=table_options(args))
    written = write_encoded(dataset, args.out) + [write_vocab(dataset, args.out)]
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}: {dataset.num_fields} fields in per-field ids")
    return 0
