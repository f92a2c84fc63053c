"""Explanation latency: one instance's decomposition with ablation, and every global statistic over the
whole Frappe test split, for AFM at k = t = 256. Prints medians of several runs.

    python benchmarks/explain_speed.py [--runs 5] [--data-dir DIR]

Targets (issue 3): one instance under 50 ms; all global statistics under 3 s on a 2-core CPU. Without the
Frappe files, a Frappe-shaped random split (10 fields, 5,382 features, 28,860 rows) is timed instead.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afm.data import Dataset, Split, load_dataset  # noqa: E402
from afm.errors import DataError  # noqa: E402
from afm.explain import decompose, explain_split  # noqa: E402
from afm.models import ModelConfig, build_model  # noqa: E402
from afm.statistics import attention_shape, faithfulness_summary, pair_statistics, planted_precision  # noqa: E402


def frappe_or_shaped(data_dir) -> Dataset:
    try:
        return load_dataset("frappe", data_dir)
    except DataError:
        rng = np.random.default_rng(0)
        sizes = [957, 4082, 7, 7, 2, 3, 2, 9, 80, 233]
        offsets = np.cumsum([0] + sizes[:-1])
        split = lambda n: Split(rng.integers(0, sizes, size=(n, 10)) + offsets, rng.choice([-1.0, 1.0], n).astype(np.float32))
        return Dataset("frappe-shaped", [f"f{i}" for i in range(10)], [f"v{i}" for i in range(sum(sizes))],
                       {"train": split(100), "validation": split(100), "test": split(28860)}, {"kind": "random"})


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def all_global_statistics(model, dataset):
    ex = explain_split(model, dataset, "test")
    return pair_statistics(ex), attention_shape(ex), planted_precision(ex), faithfulness_summary(ex)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    dataset = frappe_or_shaped(args.data_dir)
    torch.manual_seed(0)
    model = build_model(ModelConfig("afm", dataset.num_features, dataset.num_fields, embed_dim=256, attention_factor=256))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.1)  # trained-like spread, so ranks and softmax are not degenerate
    model.eval()
    rows = len(dataset.splits["test"])
    decompose(model, dataset, "test", 0)  # warm-up
    one = median_seconds(lambda: decompose(model, dataset, "test", int(np.random.randint(rows))), args.runs * 10)
    everything = median_seconds(lambda: all_global_statistics(model, dataset), args.runs)
    print(f"data: {dataset.name}, test rows {rows}, fields {dataset.num_fields}, k=256, t=256, "
          f"torch threads {torch.get_num_threads()}")
    print(f"one_instance_decomposition_with_ablation_ms={one * 1000:.1f} (target < 50)")
    print(f"all_global_statistics_s={everything:.2f} (target < 3)")


if __name__ == "__main__":
    main()
