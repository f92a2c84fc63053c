"""`bench`: training speed beside the peers, explanation latency, memory, and the app in a browser."""
from __future__ import annotations

from afm.bench import headline_line, run
from afm.bench.app import app_timings
from afm.bench.load import busy_process
from afm.cli.common import add_data_dir, add_setting_flags, stderr_log


def add(sub) -> None:
    b = sub.add_parser("bench", help="training speed beside DeepCTR-Torch and pytorch-fm; explanation latency; memory")
    b.add_argument("--quick", action="store_true", help="the main cases only, short windows: under 5 minutes")
    b.add_argument("--app", action="store_true", help="also time the app's page switches in headless Chromium")
    b.add_argument("--load", action="store_true", help="run beside one other busy process (a core taken, as by a "
                   "browser beside the app)")
    b.add_argument("--scale", type=int, metavar="ROWS", help="instead: a generated Criteo-shaped log of ROWS rows "
                   "prepared and trained beside pandas, DeepCTR-Torch and pytorch-fm (time and peak memory)")
    b.add_argument("--scale-dir", metavar="DIR", default="bench-scale", help="where --scale writes the log, the "
                   "prepared data and the models (default: bench-scale)")
    b.add_argument("--out", metavar="FILE", help="with --scale: also write the figures as a results file")
    add_setting_flags(b, ["device"])
    add_data_dir(b)
    b.set_defaults(handler=cmd_bench)


def cmd_bench(args) -> int:
    with busy_process(args.load):
        return _scale(args) if args.scale else _bench(args)


def _scale(args) -> int:
    from afm.bench.scale import scale_bench, scale_results
    from afm.core.errors import AFMError
    from afm.experiments.results import write_results
    from afm.experiments.scale import scale_markdown

    if args.scale < 1000:
        raise AFMError("--scale takes at least 1,000 rows")
    results = scale_results(scale_bench(args.scale, args.scale_dir, log=stderr_log))
    print(scale_markdown(results))
    if args.out:
        print(f"saved {write_results(results, args.out)}")
    return 0


def _bench(args) -> int:
    if args.load:
        print("beside one other busy process (--load)")
    results = run(quick=args.quick, data_dir=args.data_dir, log=stderr_log, device=args.device or "auto")
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
    deep = results["deep_explanations"]
    print(f"function-level interactions of a {deep['fields']}-field DeepFM ({deep['pairs']} pairs, MLP 400-400-400, "
          f"k=16) on {deep['rows']:,} rows, R={deep['references']}: {deep['seconds']:.1f} s on {deep['threads']} threads")
    if args.app:
        timings, training_share = app_timings(rounds=2 if args.quick else 5)
        for name, seconds in timings.items():
            print(f"app {name}: {seconds:.2f} s")
        print(f"app training, watched on the Train page: {training_share:.2f} of the library's epochs a second")
    print(headline_line(results))
    return 0
