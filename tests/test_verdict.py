"""The fair verdict's guarantees, on real runs on small data."""
import json

import numpy as np
import pytest
import torch

from optuna.distributions import CategoricalDistribution, FloatDistribution

from afm.core.errors import AFMError
from afm.data import make_synthetic
from afm.experiments.results import run_record
from afm.experiments.tuning import SearchBudget, check_grids, preset_trial, search_space, tune
from afm.experiments.verdict import (COMPARISONS, commits_note, run_commits, sanity_check, seed_interval,
                                     summarize_runs, t_quantile, verdict, verdict_markdown, verdict_sentence,
                                     verdict_tables)
from afm.models.families import hyperparameters
from afm.models.inference import predict
from afm.training.workflows import fit, save_trained


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=0, rows=1500)


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=2e-3)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=2e-2)
    assert t_quantile(0.975, 200) == pytest.approx(1.972, abs=2e-3)


def test_the_seed_interval_is_a_t_interval():
    low, high = seed_interval(np.array([-0.01, -0.02, -0.03]))
    assert (low + high) / 2 == pytest.approx(-0.02)
    assert (high - low) / 2 == pytest.approx(4.3027 * 0.01 / np.sqrt(3), rel=1e-3)
    assert np.isnan(seed_interval(np.array([-0.01]))[0])


def test_both_sides_search_the_same_range_of_every_shared_setting_and_a_narrower_grid_fails():
    fm, afm = search_space("fm"), search_space("afm")
    check_grids({"fm": fm, "afm": afm})
    assert set(fm) == {"optimizer", "lr", "dropout"} and set(afm) == set(fm) | {"attention_factor", "l2_attention"}
    assert set(fm["optimizer"].choices) == {"adagrad", "adam"}
    assert fm["lr"].log and fm["lr"].low <= 1e-4 and fm["lr"].high >= 0.2  # the audit's Adagrad 0.05 lies inside
    narrower = {**afm, "lr": FloatDistribution(1e-3, 0.2, log=True)}
    with pytest.raises(AFMError, match="search lr differently"):
        check_grids({"fm": fm, "afm": narrower})
    with pytest.raises(AFMError, match="search dropout differently"):
        check_grids({"fm": {**fm, "dropout": CategoricalDistribution((0.0, 0.3))}, "afm": afm})


def test_the_papers_configuration_is_one_trial_on_each_side():
    for dataset in ("frappe", "movielens"):
        for kind in ("fm", "afm"):
            preset = hyperparameters(dataset, kind)
            assert preset_trial(dataset, kind, search_space(kind)) == {k: preset[k] for k in search_space(kind)}


def test_a_search_prunes_counts_its_epochs_and_never_reads_the_test_split(small, tmp_path):
    budget = SearchBudget(trials=4, epoch_cap=6, extensions=0)
    searched = tune(small, "fm", {}, budget, tmp_path / "j", "fm", first={"optimizer": "adam", "lr": 0.01, "dropout": 0.3},
                    log=lambda *_: None)
    assert "test" not in json.dumps(searched)
    assert searched["trials"][0]["first"] and searched["trials"][0]["config"]["lr"] == 0.01
    assert searched["epochs_spent"] == sum(t["epochs_run"] for t in searched["trials"])
    assert searched["epochs_spent"] >= budget.total_epochs or searched["searched"] == budget.trials
    pruned = [t for t in searched["trials"] if t["state"] == "pruned"]
    assert all(t["epochs_run"] < t["epoch_cap"] for t in pruned)
    assert all(t["git"].get("commit") and "torch" in t["versions"] for t in searched["trials"])
    record = run_record(fit(small, "fm", {"epochs": 1}), small, final=False)
    assert set(record["metrics"]) == {"train", "validation"} and record["final"] is False
    # resumed from its journal: nothing is trained again
    again = tune(small, "fm", {}, budget, tmp_path / "j", "fm", log=pytest.fail)
    assert again["trials"] == searched["trials"]


def test_a_chosen_configuration_at_its_cap_is_trained_again_with_the_cap_doubled(small, tmp_path):
    searched = tune(small, "fm", {}, SearchBudget(trials=1, epoch_cap=2, extensions=1), tmp_path / "j", "fm",
                    first={"optimizer": "adam", "lr": 0.01, "dropout": 0.3}, log=lambda *_: None)
    first, extension = searched["trials"]
    assert first["at_cap"] and extension["extends"] == first["trial"] and extension["epoch_cap"] == 4
    assert searched["chosen_trial"] == extension["trial"]  # the same seed: its first two epochs are the trial's
    assert extension["validation"] <= first["validation"]


def test_fm_plus_attention_starts_as_exactly_the_fm(small, tmp_path):
    fm = save_trained(fit(small, "fm", {"epochs": 2}), small, tmp_path / "fm")
    start = fit(small, "afm", {"epochs": 0, "freeze_fm": True, "p_start": "fm"}, pretrain_dir=fm.path)
    x = small.splits["validation"].x
    np.testing.assert_allclose(predict(start.model, x), predict(fm.model, x), rtol=1e-5, atol=1e-5)
    trained = fit(small, "afm", {"epochs": 3, "freeze_fm": True, "p_start": "fm"}, pretrain_dir=fm.path)
    fm_validation = trained.result.history[0]["validation_rmse"]  # epoch 0 is the FM itself
    assert trained.result.best_validation <= fm_validation  # best epoch by validation: never worse
    assert torch.equal(trained.model.embedding.weight, fm.model.embedding.weight)


def test_the_verdict_uses_the_wider_interval():
    rows = [{"model": "FM", "seed": s, "test_rmse": 0.60 + 0.001 * s} for s in range(3)]
    rows += [{"model": "AFM", "seed": s, "test_rmse": 0.55 + 0.02 * s, "bootstrap_low": -0.051, "bootstrap_high": -0.049}
             for s in range(3)]
    summary, comparisons = summarize_runs(rows)
    afm = comparisons[0]
    assert afm["interval_used"] == "across-seed t interval" and afm["verdict_low"] == pytest.approx(afm["seed_low"])
    assert [r["seeds"] for r in summary] == [3, 3]


@pytest.fixture(scope="module")
def quick_verdict(small, tmp_path_factory):
    stages = []
    results = verdict(small, SearchBudget(trials=2, epoch_cap=3), seeds=2, models_dir=tmp_path_factory.mktemp("v"),
                      log=lambda *_: None, others={}, on_stage=lambda partial: stages.append(partial))
    return results, stages


def test_a_quick_verdict_records_budget_provenance_and_test_only_for_final_runs(quick_verdict):
    results, stages = quick_verdict
    assert set(results["search"]) == {"fm", "afm", "afm-scratch"}
    assert {s["budget"]["trials"] for s in results["search"].values()} == {2}
    assert "test" not in json.dumps(results["search"])
    assert {r["model"] for r in results["runs"]} == {"FM", "AFM", "AFM (scratch)", "FM (AFM's epochs)", "uniform AFM", "FM+A"}
    assert results["git"]["commit"] and "torch_threads" in results["versions"]
    assert all(r["git"]["commit"] and "torch" in r["versions"] for r in results["runs"])  # every run row: its own
    assert {(c["model"], c["baseline"]) for c in results["comparisons"]} == set(COMPARISONS)
    assert results["finished"] and not results["missing"]
    # a long run leaves a file after every stage; an unfinished one says so instead of a verdict
    assert [s["done"][-1] for s in stages][:2] == ["FM search", "FM seeds"] and not stages[0]["finished"]
    assert verdict_sentence(stages[0]).startswith("No verdict yet: the run is unfinished")
    assert verdict_tables(stages[0])["summary"].empty


def test_fm_is_given_afms_epochs_in_all(quick_verdict):
    results, _ = quick_verdict
    runs = {(r["model"], r["seed"]): r for r in results["runs"]}
    for seed in range(2):
        afm, fm = runs[("AFM", seed)], runs[("FM", seed)]
        assert afm["total_epochs"] == afm["epochs_run"] + fm["epochs_run"]
        given = runs[("FM (AFM's epochs)", seed)]
        assert given["epoch_cap"] == afm["total_epochs"] == given["epochs_run"]  # patience 0: it used them all
    assert results["search"]["afm"]["epochs_with_fm"] == (results["search"]["afm"]["epochs_spent"]
                                                          + results["search"]["fm"]["epochs_spent"])
    assert "FM (AFM's epochs)" in verdict_sentence(results)


def settled(results: dict) -> dict:
    """The same results as if every search's trials had stopped by themselves (early stopping)."""
    return {**results, "search": {side: {**s, "chosen_at_cap": False,
                                         "trials": [{**t, "stop_reason": "early stopping", "at_cap": False}
                                                    for t in s["trials"]]}
                                  for side, s in results["search"].items()}}


def test_a_configuration_still_improving_at_its_cap_is_not_at_rest():
    from afm.experiments.tuning import still_improving

    assert still_improving({"stop_reason": "finished", "best_epoch": 79, "epoch_cap": 80, "patience": 5})
    assert not still_improving({"stop_reason": "finished", "best_epoch": 75, "epoch_cap": 80, "patience": 5})
    assert not still_improving({"stop_reason": "early stopping", "best_epoch": 79, "epoch_cap": 80, "patience": 5})
    assert not still_improving({"stop_reason": "pruned", "best_epoch": 6, "epoch_cap": 80, "patience": 5})
    assert still_improving({"stop_reason": "finished", "best_epoch": 80, "epoch_cap": 80, "patience": 0})


def test_a_chosen_configuration_at_its_cap_blocks_the_headline(quick_verdict):
    results, _ = quick_verdict
    at_cap = {side: s["chosen_at_cap"] for side, s in results["search"].items()}
    sentence = verdict_sentence(results)
    assert sentence.startswith("No verdict") == any(at_cap.values())
    for side in results["search"]:
        changed = settled(results)
        changed["search"][side] = {**changed["search"][side], "chosen_at_cap": True}
        assert verdict_sentence(changed).startswith("No verdict: the chosen ")
    assert not verdict_sentence(settled(results)).startswith("No verdict")


def test_an_fm_recorded_elsewhere_that_beats_the_chosen_one_blocks_the_headline(quick_verdict):
    results, _ = quick_verdict
    clear = settled(results)
    ours = results["search"]["fm"]["chosen_validation"]
    better = {"kind": "reproduce", "data": results["data"], "models": {"fm": {
        "settings": {"loss": "squared", "embed_dim": results["budget"]["embed_dim"]},
        "metrics": {"validation": {"rmse": ours - 0.01}}}}}
    other_data = {**better, "data": {**results["data"], "fingerprint": "another"}}
    assert sanity_check(clear, {"other": other_data})["passes"]
    sanity = sanity_check(clear, {"better": better, "other": other_data})
    assert not sanity["passes"] and sanity["best_recorded"]["file"] == "better"
    sentence = verdict_sentence({**clear, "sanity": sanity})
    assert sentence.startswith("No verdict") and "better (fm" in sentence


def test_a_file_with_two_commits_says_so(quick_verdict):
    results, _ = quick_verdict
    assert commits_note(results) == ""
    rows = [dict(r) for r in results["runs"]]
    rows[0]["git"] = {"commit": "0" * 40, "dirty": False}
    mixed = {**results, "runs": rows, "commits": None}
    assert run_commits(mixed)[0] == "0" * 40 and "trained at 2 commits" in commits_note(mixed)
    assert "trained at 2 commits" in verdict_markdown(mixed)


def test_a_verdict_resumes_from_its_models_dir(small, tmp_path):
    first = verdict(small, SearchBudget(trials=2, epoch_cap=2), seeds=1, models_dir=tmp_path, log=lambda *_: None,
                    others={}, variants=False)
    lines = []
    again = verdict(small, SearchBudget(trials=2, epoch_cap=2), seeds=1, models_dir=tmp_path, log=lines.append,
                    others={}, variants=False)
    assert not any("trial" in line for line in lines)  # every search read back from the journal
    assert again["search"] == first["search"] and again["chosen"] == first["chosen"]
    assert {r["model"] for r in again["runs"]} == {"FM", "AFM", "AFM (scratch)", "FM (AFM's epochs)"}
