"""The benchmark's parts on real computations, shrunk to seconds (figures are printed by `afm bench`, never
asserted against a time)."""
import re

import numpy as np
import pytest

from afm.bench import Case
from afm.bench import training as bench


def test_alternated_rotates_the_order_and_takes_medians():
    calls = []

    def runner(name, values):
        values = iter(values)
        return lambda: calls.append(name) or next(values)

    medians = bench.alternated({"a": runner("a", [1, 9, 2]), "b": runner("b", [5, 4, 100])}, windows=3)
    assert medians == {"a": 2, "b": 5}
    assert calls == ["a", "b", "b", "a", "a", "b"]  # each library goes first in turn


def test_distinct_pair_fraction():
    same = np.zeros((50, 4), dtype=np.int64)
    assert bench.distinct_pair_fraction(same, [1, 1, 1, 1], 10, batches=3) == pytest.approx(1 / 10)  # one pair per column
    unique_rows = np.arange(4000).reshape(1000, 4)
    fraction = bench.distinct_pair_fraction(unique_rows, [4000] * 4, 10, batches=3)
    assert 0.8 < fraction <= 1.0  # only rows drawn twice repeat


@pytest.mark.parametrize("data", ["movielens", "criteo"])
def test_every_library_trains_the_same_case_in_both_configurations(data):
    rows, sizes, _ = bench.bench_data(data)
    case = Case(data, "afm", 8, 256, 16)
    libraries = [name for name, why in bench.available_libraries().items() if not why]
    assert "ours" in libraries
    for library in libraries + [name + bench.AS_SHIPPED for name in libraries if name != "ours"]:
        trainer = bench._Trainer(library, case, rows[:2000], sizes)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        assert trainer.window() > 0
        assert any(not np.allclose(a, b.detach()) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.parametrize("kind", bench.DEEP)
def test_each_mlp_family_trains_in_every_library_that_ships_it(kind):
    rows, sizes, _ = bench.bench_data("criteo")
    case = Case("criteo", kind, 0, 128, 8)
    libraries = [name for name, why in bench.available_libraries().items() if not why]
    trained = []
    for library in libraries:
        try:
            trainer = bench._Trainer(library, case, rows[:1000], sizes)
        except bench.NotShipped:
            assert library == "torchfm" and kind in ("dcn", "autoint")  # v1 and another attention there
            continue
        before = [p.detach().clone() for p in trainer.model.parameters()]
        assert trainer.window() > 0
        assert any(not np.allclose(a, b.detach()) for a, b in zip(before, trainer.model.parameters()))
        trained.append(library)
    assert "ours" in trained


def test_missing_peers_are_reported_not_fatal():
    status = bench.available_libraries()
    assert status["ours"] == "" and set(status) == {"ours", *bench.PEERS}
    assert all(isinstance(why, str) for why in status.values())


def test_headline_run_prints_the_last_line(tmp_path):
    results = bench.run(quick=True, data_dir=tmp_path, log=lambda line: None, only=[Case(*bench.HEADLINE)],
                        window_seconds=0.01)
    row = results["training"].iloc[0]
    assert row["ours_samples_s"] > 0 and row["work_limit_samples_s"] > 0
    assert row["speedup_vs_fastest_peer"] > 0 and row["speedup_vs_peers_as_shipped"] > 0
    assert results["data"]["frappe"] == "random rows of Frappe's field sizes"  # no data in tmp_path
    assert set(results["memory"]["model"]) == {"fm", "afm"} and (results["memory"]["peak_mb"] > 0).all()
    assert results["explanations"]["test_rows"] == 28860 and results["explanations"]["one_instance_ms"] > 0
    deep = results["deep_explanations"]
    assert (deep["fields"], deep["pairs"]) == (39, 741) and deep["seconds"] > 0
    assert re.fullmatch(r"speedup_vs_fastest_peer=(\d+\.\d\d|nan) fraction_of_matmul_limit=\d+\.\d\d",
                        bench.headline_line(results))


def test_criteo_shaped_data_is_wide_and_long_tailed():
    rows, sizes, description = bench.bench_data("criteo")
    assert len(sizes) == 39 and min(sizes) == 3 and max(sizes) == 100_000 and "Zipf" in description
    assert (rows < np.array(sizes)).all() and (rows >= 0).all()
    biggest = rows[:, int(np.argmax(sizes))]
    counts = np.bincount(biggest)
    assert counts[0] > 100 * np.median(counts[counts > 0])  # a long tail: id 0 is far more common than most


def test_the_peers_best_configuration_uses_sparse_gradients_where_ours_would():
    pytest.importorskip("torchfm")
    rows, sizes, _ = bench.bench_data("movielens")
    best = bench.LIBRARIES["torchfm"](Case("movielens", "fm", 0, 256, 16), sizes, bench.torch.device("cpu"))
    shipped = bench.LIBRARIES["torchfm" + bench.AS_SHIPPED](Case("movielens", "fm", 0, 256, 16), sizes,
                                                             bench.torch.device("cpu"))
    assert best[0].embedding.embedding.sparse and not shipped[0].embedding.embedding.sparse


def test_the_distinct_work_limit_counts_distinct_pairs_not_cells():
    rows, sizes, _ = bench.bench_data("movielens")
    case = Case("movielens", "afm", 16, 512, 16)
    repeated = np.zeros_like(rows[:1000])  # every row the same: one distinct pair per column
    few = bench.distinct_work_limit(case, repeated, sizes, windows=1, window_seconds=0.01)
    many = bench.distinct_work_limit(case, rows[:1000], sizes, windows=1, window_seconds=0.01)
    assert few > many > 0  # less distinct work, a higher limit


def test_scale_measures_a_child_process_time_and_peak_memory():
    import sys

    from afm.bench.scale import measure

    code = "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(0.6); print('done')"
    done = measure([sys.executable, "-c", code])
    assert done["stdout"].strip() == "done" and done["seconds"] >= 0.6
    assert 300 < done["peaks_mb"][0] < 600  # the child's own high-water mark, not this process's
    with pytest.raises(RuntimeError, match="failed"):
        measure([sys.executable, "-c", "raise SystemExit(3)"])
