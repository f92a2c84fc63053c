"""`python -m afm bench`: training speed of our FM, AFM, DeepFM, DCN-v2, AutoInt and NFM beside DeepCTR-Torch
and pytorch-fm, the matmul limit of AFM's attention network, explanation latency (a 39-field DeepFM's
function-level interactions too), peak memory and (where Chromium is here) the app.

Every library trains the same data (the Frappe train split where it is in the data directory, else random
rows of Frappe's field sizes; MovieLens-shaped random rows, 3 fields and 90,445 features; Criteo-shaped
random rows, 39 fields of 3 to 100,000 values with Zipf-like ids) with the same k, t, batch size, optimizer
(Adagrad) and squared loss, no dropout. The peers run in two configurations: their best that PyTorch allows
without changing their code (the headline: the same rule as ours, sparse embedding gradients where a batch
touches few of a table's rows, else PyTorch's fused Adagrad) and as their examples use them (plain Adagrad
on dense gradients). The libraries' timing windows alternate (the order rotating each round), so machine
noise falls on all of them alike; figures are medians. The peers are optional (requirements-bench.txt); a
missing one is reported and skipped.

The limit counts the work done: AFM computes each distinct feature pair of a batch once, so the limit is
the attention network's three matmuls over the batch's distinct pairs (at the faster of PyTorch's matmul,
which calls MKL, and oneDNN's, which ours calls), plus the passes over every (row,
pair) cell that no implementation avoids (gathering the pair products to the rows and pooling them,
forward and backward) at the memory bandwidth measured here.
"""
from __future__ import annotations

import math
import multiprocessing
import resource
import statistics
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from afm.core.errors import AFMError
from afm.data import Dataset, Split, load_dataset
from afm.explain.interactions import interactions
from afm.explain.parts import decompose, explain_split
from afm.explain.statistics import attention_shape, faithfulness_summary, pair_statistics, planted_precision
from afm.fast.matmul import mm
from afm.models import AFM_KIND, FM_KIND, ModelConfig, build_model
from afm.store.importers import field_vocabularies, local_ids  # each field's own ids 0..size-1, as the peers take
from afm.training.loop import TrainConfig, build_optimizer, resolve_device, use_sparse_gradients

EMBED_DIM = 256
FRAPPE_FIELD_SIZES = [957, 4082, 7, 7, 2, 3, 2, 9, 80, 233]
MOVIELENS_FIELD_SIZES = [17045, 23743, 49657]  # the paper's ml-tag: users, movies, tags (90,445 features)
PEERS = ("deepctr-torch", "torchfm")
AS_SHIPPED = " (as shipped)"  # a peer with plain Adagrad on dense gradients, as its examples train
HEADLINE = ("frappe", AFM_KIND, 256, 1024)  # (data, model, t, batch) of the last line


def criteo_field_sizes(fields: int = 39, low: int = 3, high: int = 100_000) -> list[int]:
    """Criteo-shaped cardinalities: from 3 to 100,000, spread as click logs spread them (log-uniform)."""
    return np.round(np.geomspace(low, high, fields)).astype(int).tolist()


@dataclass(frozen=True)
class Case:
    data: str  # "frappe", "movielens" or "criteo" (shaped)
    model: str  # FM_KIND or AFM_KIND
    attention_factor: int  # t; 0 for FM
    batch_size: int
    embed_dim: int = EMBED_DIM


# The MLP families as BARS ran them on Frappe_x1 (three hidden layers of 400; DCN-v2 with 3 cross layers;
# AutoInt with 3 interacting layers of 2 heads, no MLP), in every library the same, batch norm where one
# library's MLP always has it (pytorch-fm's). Peers: DeepCTR-Torch ships all four; pytorch-fm DeepFM and
# NFM (its DCN is v1 and its AutoInt another attention, so there is nothing of the same family to time).
DEEP = ("deepfm", "dcn", "autoint", "nfm")
HIDDEN = (400, 400, 400)


def deep_settings(kind: str, embed_dim: int) -> dict:
    if kind == "autoint":
        return {"attention_layers": 3, "attention_heads": 2, "head_size": max(1, embed_dim // 2), "hidden_layers": ""}
    return {"hidden_layers": ",".join(map(str, HIDDEN)), "batch_norm": kind != "nfm",
            **({"cross_layers": 3} if kind == "dcn" else {})}


def deep_cases(quick: bool) -> list[Case]:
    """Frappe-shaped at BARS' k = 10 and Criteo-shaped (39 fields) at k = 16, batch 4096, for each family."""
    shapes = [("frappe", 10)] if quick else [("frappe", 10), ("criteo", 16)]
    return [Case(data, kind, 0, 4096, k) for data, k in shapes for kind in DEEP]


def cases(quick: bool) -> list[Case]:
    wide = [Case("criteo", AFM_KIND, 16, b, k) for k in (16, 64) for b in (1024, 4096)]
    if quick:
        return [Case("frappe", AFM_KIND, 256, 1024), Case("frappe", AFM_KIND, 16, 1024), Case("frappe", FM_KIND, 0, 1024),
                Case("movielens", AFM_KIND, 16, 4096), Case("movielens", FM_KIND, 0, 4096),
                Case("criteo", AFM_KIND, 16, 1024, 16), *deep_cases(quick)]
    frappe = [Case("frappe", AFM_KIND, t, b) for t in (256, 16) for b in (128, 1024, 4096)]
    frappe += [Case("frappe", FM_KIND, 0, b) for b in (128, 1024, 4096)]
    movielens = [Case("movielens", AFM_KIND, t, b) for t in (256, 16) for b in (1024, 4096)]
    movielens += [Case("movielens", FM_KIND, 0, b) for b in (1024, 4096)]
    return frappe + movielens + wide + [Case("criteo", FM_KIND, 0, 4096, 64)] + deep_cases(quick)


# --- data -------------------------------------------------------------------------------------------------

def _random_rows(sizes: list[int], n: int, seed: int = 0) -> np.ndarray:
    """(n, m) per-field value ids, uniform within each field."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, sizes, size=(n, len(sizes)))


def _field_offsets(sizes: list[int]) -> np.ndarray:
    """Each field's first global feature id: per-field value ids + offsets = the ids our models take."""
    return np.cumsum([0] + list(sizes[:-1]))


def bench_data(data: str, data_dir=None) -> tuple[np.ndarray, list[int], str]:
    """(per-field value ids (N, m), field sizes, description). Frappe's train split where available."""
    if data == "frappe":
        try:
            dataset = load_dataset("frappe", data_dir)
        except AFMError:
            return _random_rows(FRAPPE_FIELD_SIZES, 200_000), FRAPPE_FIELD_SIZES, "random rows of Frappe's field sizes"

        sizes = [len(v) for v in field_vocabularies(dataset)]
        return local_ids(dataset, "train"), sizes, "the Frappe train split (reconstructed)"
    if data == "criteo":
        sizes = criteo_field_sizes()
        return _zipf_rows(sizes, 200_000), sizes, f"random Zipf-like rows of {len(sizes)} Criteo-shaped fields"
    return _random_rows(MOVIELENS_FIELD_SIZES, 200_000), MOVIELENS_FIELD_SIZES, "random rows of ml-tag's field sizes"


def _zipf_rows(sizes: list[int], n: int, exponent: float = 1.1, seed: int = 0) -> np.ndarray:
    """(n, m) ids with a long tail in every field, as click logs have: P(id r) ~ 1 / (r + 1)^exponent."""
    rng = np.random.default_rng(seed)
    columns = []
    for size in sizes:
        weights = 1.0 / np.arange(1, size + 1) ** exponent
        columns.append(rng.choice(size, size=n, p=weights / weights.sum()))
    return np.stack(columns, axis=1)


# --- the libraries, each as a (step function, trainable model) for one case -------------------------------

def _ours(case: Case, sizes: list[int], device: torch.device):
    n, m = sum(sizes), len(sizes)
    deep = deep_settings(case.model, case.embed_dim) if case.model in DEEP else {}
    model = build_model(ModelConfig(case.model, n, m, case.embed_dim, max(case.attention_factor, 1), **deep)).to(device)
    optimizer = build_optimizer(model, TrainConfig(batch_size=case.batch_size, lr=0.01, optimizer="adagrad"), m, n)
    offsets = torch.as_tensor(_field_offsets(sizes), device=device)
    return model, optimizer, lambda ids: ids + offsets  # global feature ids


# PyTorch's own sparse Adagrad coalesces and masks through sparse tensors, so it pays later than ours:
# this is where it beat the fused dense step for a table on 2 CPU cores (the previous round's rule).
STOCK_SPARSE_ROWS_PER_ID = 10


def _peer_optimizer(model: torch.nn.Module, case: Case, sizes: list[int], best: bool):
    """A peer's optimizer, PyTorch's Adagrad either way. Best: the fastest configuration PyTorch allows their
    unchanged layers, sparse embedding gradients where a batch touches few of a table's rows, else the fused
    dense step. As shipped: plain Adagrad on dense gradients, as their examples train. (Ours updates only
    the touched rows with its own optimizer, afm.fast.optim.RowAdagrad: our code, so not given to them.)"""
    if not best:
        return torch.optim.Adagrad(model.parameters(), lr=0.01)
    sparse = case.batch_size * len(sizes) * STOCK_SPARSE_ROWS_PER_ID < sum(sizes)
    use_sparse_gradients(model, sparse)
    return torch.optim.Adagrad(model.parameters(), lr=0.01, fused=not sparse or None)


class NotShipped(Exception):
    """A peer has no model of this family (its case is left blank)."""


def _torchfm(case: Case, sizes: list[int], device: torch.device, best: bool = True):
    from torchfm.model.afm import AttentionalFactorizationMachineModel
    from torchfm.model.dfm import DeepFactorizationMachineModel
    from torchfm.model.fm import FactorizationMachineModel
    from torchfm.model.nfm import NeuralFactorizationMachineModel

    if case.model == FM_KIND:
        model = FactorizationMachineModel(sizes, case.embed_dim)
    elif case.model == "deepfm":
        model = DeepFactorizationMachineModel(sizes, case.embed_dim, HIDDEN, 0.0)
    elif case.model == "nfm":
        model = NeuralFactorizationMachineModel(sizes, case.embed_dim, HIDDEN, (0.0, 0.0))
    elif case.model in DEEP:
        raise NotShipped(f"pytorch-fm has no {case.model} of this architecture")
    else:
        model = AttentionalFactorizationMachineModel(sizes, case.embed_dim, case.attention_factor, dropouts=(0.0, 0.0))
    model = model.to(device)
    return model, _peer_optimizer(model, case, sizes, best), lambda ids: ids  # it adds field offsets


def _deepctr(case: Case, sizes: list[int], device: torch.device, best: bool = True):
    _import_deepctr_offline()
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import AFM

    columns = [SparseFeat(f"f{i}", size, embedding_dim=case.embed_dim) for i, size in enumerate(sizes)]
    if case.model in DEEP:
        from deepctr_torch import models

        shared = dict(task="regression", device=str(device), l2_reg_embedding=0)
        if case.model == "autoint":
            model = models.AutoInt(columns, columns, att_layer_num=3, att_head_num=2, dnn_hidden_units=(), **shared)
        elif case.model == "nfm":
            model = models.NFM(columns, columns, dnn_hidden_units=HIDDEN, l2_reg_linear=0, **shared)
        else:
            factory, extra = ((models.DCN, {"cross_num": 3, "cross_parameterization": "matrix"})
                              if case.model == "dcn" else (models.DeepFM, {}))
            model = factory(columns, columns, dnn_hidden_units=HIDDEN, dnn_use_bn=True, l2_reg_linear=0, **extra, **shared)
        return model, _peer_optimizer(model, case, sizes, best), lambda ids: ids.float()
    # use_attention=False is DeepCTR's standard FM (its documentation says so)
    model = AFM(columns, columns, use_attention=case.model == AFM_KIND, attention_factor=max(case.attention_factor, 1),
                l2_reg_linear=0, l2_reg_embedding=0, l2_reg_att=0, afm_dropout=0, task="regression", device=str(device))
    return model, _peer_optimizer(model, case, sizes, best), lambda ids: ids.float()  # its input format


LIBRARIES = {"ours": _ours, "deepctr-torch": _deepctr, "torchfm": _torchfm,
             "deepctr-torch" + AS_SHIPPED: lambda *a: _deepctr(*a, best=False),
             "torchfm" + AS_SHIPPED: lambda *a: _torchfm(*a, best=False)}


def _import_deepctr_offline() -> None:
    """DeepCTR-Torch starts a thread at import that asks PyPI for its latest version: answer it locally."""
    import requests

    real_get = requests.get
    before = set(threading.enumerate())
    requests.get = lambda *a, **k: type("Offline", (), {"status_code": 0, "text": ""})()
    try:
        import deepctr_torch  # noqa: F401
        for thread in set(threading.enumerate()) - before:
            thread.join(5)
    finally:
        requests.get = real_get


def available_libraries() -> dict[str, str]:
    """Library name -> "" where importable, else why not."""
    status = {"ours": ""}
    for name, module in (("deepctr-torch", "deepctr_torch"), ("torchfm", "torchfm")):
        try:
            _import_deepctr_offline() if name == "deepctr-torch" else __import__(module)
            status[name] = ""
        except Exception as exc:  # ImportError, or a peer broken by newer numpy/torch
            status[name] = f"{type(exc).__name__}: {exc}"
    return status


class _Trainer:
    """One library's model on one case, stepping through shuffled batches of the same rows."""

    def __init__(self, library: str, case: Case, rows: np.ndarray, sizes: list[int], device=torch.device("cpu")):
        torch.manual_seed(0)
        self.device = torch.device(device)
        self.model, self.optimizer, self.to_input = LIBRARIES[library](case, sizes, self.device)
        self.model.train()
        self.rows = torch.as_tensor(rows, device=self.device)
        self.targets = torch.as_tensor(np.where(np.arange(len(rows)) % 3 == 0, 1.0, -1.0), dtype=torch.float32,
                                       device=self.device)
        self.batch_size = case.batch_size
        if hasattr(self.model, "choose_pair_sharing"):  # ours, as `train` sets it up
            self.model.choose_pair_sharing(self.to_input(self.rows[:case.batch_size]))
        self.generator = torch.Generator().manual_seed(0)
        self.steps_per_window = 1

    def step(self) -> None:
        idx = torch.randint(0, len(self.rows), (self.batch_size,), generator=self.generator).to(self.device)
        prediction = self.model(self.to_input(self.rows[idx])).reshape(-1)
        loss = (prediction - self.targets[idx]).square().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def calibrate(self, window_seconds: float) -> None:
        for _ in range(2):  # warm-up: first-touch allocations, lazy optimizer state
            self.step()
        started = time.perf_counter()
        self.step()
        _synchronize(self.device)
        self.steps_per_window = max(1, math.ceil(window_seconds / (time.perf_counter() - started)))

    def window(self) -> float:
        """Training samples per second over one window."""
        started = time.perf_counter()
        for _ in range(self.steps_per_window):
            self.step()
        _synchronize(self.device)
        return self.steps_per_window * self.batch_size / (time.perf_counter() - started)


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a window's clock covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternated(runners: dict[str, callable], windows: int) -> dict[str, float]:
    """Median of each runner's figure over `windows` rounds, the order rotating every round."""
    names = list(runners)
    figures = {name: [] for name in names}
    for w in range(windows):
        for name in names[w % len(names):] + names[:w % len(names)]:
            figures[name].append(runners[name]())
    return {name: statistics.median(values) for name, values in figures.items()}


def training_speed(case: Case, rows: np.ndarray, sizes: list[int], libraries: list[str], windows: int,
                   window_seconds: float, device=torch.device("cpu")) -> dict[str, float]:
    trainers = {}
    for library in libraries:
        try:
            trainers[library] = _Trainer(library, case, rows, sizes, device)
        except NotShipped:
            continue
        trainers[library].calibrate(window_seconds)
    speeds = alternated({name: trainer.window for name, trainer in trainers.items()}, windows)
    if case.model == AFM_KIND and case.data == HEADLINE[0] and case.attention_factor == HEADLINE[2] \
            and case.batch_size == HEADLINE[3]:
        speeds["work_limit"] = distinct_work_limit(case, rows, sizes, windows, window_seconds, torch.device(device))
    return speeds


def _repeat_timer(fn, window_seconds: float):
    """A window function: `fn` repeated for about `window_seconds`, returning seconds per call."""
    for _ in range(2):
        fn()
    started = time.perf_counter()
    fn()
    repeats = max(1, math.ceil(window_seconds / max(time.perf_counter() - started, 1e-9)))

    def window():
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - started) / repeats

    return window


def distinct_work_limit(case: Case, rows: np.ndarray, sizes: list[int], windows: int, window_seconds: float,
                        device: torch.device = torch.device("cpu")) -> float:
    """Samples/s if a step did only the work no AFM can avoid: the attention network's three matmuls
    (forward, input and weight gradients) over the batch's U distinct pairs (median U of real batches), at
    the faster of PyTorch's matmul and oneDNN's (`afm.fast.matmul.mm`, which ours uses), and four passes over the
    B x P x k cells (gather and pool, forward and backward) at the memory bandwidth measured here."""
    m, k, t = len(sizes), case.embed_dim, case.attention_factor
    model = build_model(ModelConfig(AFM_KIND, sum(sizes), m, embed_dim=1, attention_factor=1))
    ids = torch.as_tensor(rows + _field_offsets(sizes))
    generator = torch.Generator().manual_seed(0)
    distinct = round(statistics.median(
        len(model.distinct_pairs(ids[torch.randint(0, len(ids), (case.batch_size,), generator=generator)])[0])
        for _ in range(10)))
    products, weight, grad = (torch.randn(shape, device=device) for shape in ((distinct, k), (t, k), (distinct, t)))

    def three_matmuls(matmul):
        def run():
            matmul(products, weight.T), matmul(grad, weight), matmul(grad.T, products)
            _synchronize(device)
        return run

    cells = case.batch_size * m * (m - 1) // 2 * k
    source = torch.randn(max(cells, 1 << 24), device=device)
    target = torch.empty_like(source)

    def copy():  # one read and one write of every element
        target.copy_(source)
        _synchronize(device)

    timed = alternated({"torch": _repeat_timer(three_matmuls(torch.mm), window_seconds),
                        "afm.fast.matmul": _repeat_timer(three_matmuls(mm), window_seconds),
                        "copy": _repeat_timer(copy, window_seconds)}, windows)
    seconds_per_cell_pass = timed["copy"] / source.numel()
    return case.batch_size / (min(timed["torch"], timed["afm.fast.matmul"]) + 4 * cells * seconds_per_cell_pass)


def distinct_pair_fraction(rows: np.ndarray, sizes: list[int], batch_size: int, batches: int = 20) -> float:
    """Share of a batch's (row, pair) cells that are distinct feature pairs: what AFM computes per step,
    counted by the model's own `distinct_pairs`."""
    model = build_model(ModelConfig(AFM_KIND, sum(sizes), len(sizes), embed_dim=1, attention_factor=1))
    ids = torch.as_tensor(rows + _field_offsets(sizes))
    generator = torch.Generator().manual_seed(0)
    shares = []
    for _ in range(batches):
        first, _, inverse = model.distinct_pairs(ids[torch.randint(0, len(ids), (batch_size,), generator=generator)])
        shares.append(len(first) / inverse.numel())
    return float(np.mean(shares))


# --- explanations and memory ------------------------------------------------------------------------------

def explanation_latency(data_dir=None, runs: int = 5) -> dict:
    """One instance's decomposition with ablation, and every global statistic of the whole Frappe test split
    (random rows of its shape where the files are not here), for AFM at k = t = 256."""
    try:
        dataset = load_dataset("frappe", data_dir)
    except AFMError:
        offsets = _field_offsets(FRAPPE_FIELD_SIZES)
        split = lambda n: Split(_random_rows(FRAPPE_FIELD_SIZES, n) + offsets,  # noqa: E731
                                np.where(np.arange(n) % 3 == 0, 1.0, -1.0).astype(np.float32))
        dataset = Dataset("frappe-shaped", [f"f{i}" for i in range(10)],
                          [f"v{i}" for i in range(sum(FRAPPE_FIELD_SIZES))],
                          {"train": split(100), "validation": split(100), "test": split(28860)}, {"kind": "random"})
    torch.manual_seed(0)
    model = build_model(ModelConfig(AFM_KIND, dataset.num_features, dataset.num_fields, EMBED_DIM, 256))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.1)  # a trained-like spread, so softmax and ranks are not degenerate
    model.eval()
    rows = len(dataset.splits["test"])
    rng = np.random.default_rng(0)

    def everything():
        explanation = explain_split(model, dataset, "test")
        pair_statistics(explanation), attention_shape(explanation)
        planted_precision(explanation), faithfulness_summary(explanation)

    def timed(fn, repeats):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def one_instance():
        decompose(model, dataset, "test", int(rng.integers(rows)))

    def function_level(sample):
        return lambda: interactions(model, dataset, "test", sample=sample, reference_count=16)

    one_instance()
    return {"data": dataset.name, "test_rows": rows, "one_instance_ms": 1000 * timed(one_instance, runs * 10),
            "whole_test_split_s": timed(everything, runs),
            "interactions_2000_rows_s": timed(function_level(2000), runs),
            "interactions_whole_split_s": timed(function_level(None), max(1, runs // 3))}


def _memory_mb() -> tuple[float, float]:
    """(resident now, peak resident) of this process in MB. Linux's VmHWM, which, unlike ru_maxrss, does
    not carry the parent's peak over fork and exec; ru_maxrss elsewhere."""
    try:
        status = dict(line.split(":", 1) for line in open("/proc/self/status", encoding="ascii"))
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def _peak_rss_child(library: str, case: Case, rows: np.ndarray, sizes: list[int], device: str, steps: int,
                    queue) -> None:
    from afm.fast.allocator import retain_freed_memory

    retain_freed_memory()  # as `afm train` runs
    try:
        trainer = _Trainer(library, case, rows, sizes, device)
    except NotShipped:
        queue.put((math.nan, math.nan))
        return
    if trainer.device.type == "cuda":  # GPU memory, allocated by torch
        torch.cuda.reset_peak_memory_stats()
        start_mb = torch.cuda.memory_allocated() / 2**20
    else:
        start_mb, _ = _memory_mb()
    for _ in range(steps):
        trainer.step()
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else _memory_mb()[1]
    queue.put((start_mb, peak_mb))


def peak_memory(library: str, case: Case, rows: np.ndarray, sizes: list[int], device=torch.device("cpu"),
                steps: int = 5) -> dict:
    """Peak memory (MB; resident on the CPU, allocated on a GPU) of a fresh process training `steps` steps,
    and how much training added."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_peak_rss_child, args=(library, case, rows, sizes, str(device), steps, queue))
    process.start()
    start_mb, peak_mb = queue.get(timeout=600)
    process.join()
    return {"peak_mb": peak_mb, "training_mb": peak_mb - start_mb}


# --- the whole benchmark ----------------------------------------------------------------------------------

def run(quick: bool = False, data_dir=None, log=print, only: list[Case] | None = None,
        window_seconds: float | None = None, device: str = "auto") -> dict:
    """Every figure of the benchmark as tables; `log` gets a line per finished case. `only` and
    `window_seconds` shrink it further than `quick` (tests). Training runs on `device` (auto: a GPU where
    there is one); explanations on the CPU, as the app computes them."""
    device = resolve_device(device)
    status = available_libraries()
    libraries = [name for name, why in status.items() if not why]
    windows, seconds = (3, 0.5) if quick else (5, 1.5)
    window_seconds = window_seconds or seconds
    selected = only or cases(quick)
    data = {name: bench_data(name, data_dir) for name in dict.fromkeys(c.data for c in selected) | {"frappe": None}}
    libraries += [name + AS_SHIPPED for name in libraries if name != "ours"]
    speed_rows = []
    for case in selected:
        rows, sizes, _ = data[case.data]
        speeds = training_speed(case, rows, sizes, libraries, windows, window_seconds, device)
        row = {"data": case.data, "model": case.model, "k": case.embed_dim, "t": case.attention_factor or None,
               "batch": case.batch_size, **{f"{name}_samples_s": speeds.get(name, math.nan) for name in libraries}}
        best = [speeds[name] for name in libraries if name != "ours" and not name.endswith(AS_SHIPPED) and name in speeds]
        shipped = [speeds[name] for name in libraries if name.endswith(AS_SHIPPED) and name in speeds]
        row["speedup_vs_fastest_peer"] = speeds["ours"] / max(best) if best else float("nan")
        row["speedup_vs_peers_as_shipped"] = speeds["ours"] / max(shipped) if shipped else float("nan")
        if "work_limit" in speeds:
            row["work_limit_samples_s"] = speeds["work_limit"]
        speed_rows.append(row)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    data_name, _, t, batch = HEADLINE
    rows, sizes, _ = data[data_name]
    memory_rows = [{"library": name, "model": kind,
                    **peak_memory(name, Case(data_name, kind, t if kind == AFM_KIND else 0, batch), rows, sizes, device)}
                   for name in libraries if not name.endswith(AS_SHIPPED) for kind in (FM_KIND, AFM_KIND)]
    memory_rows += [{"library": name, "model": case.model, **peak_memory(name, case, *data[case.data][:2], device)}
                    for case in selected if case.model in DEEP and case.data == "frappe"
                    for name in libraries if not name.endswith(AS_SHIPPED)]
    return {
        "device": _device_name(device), "threads": torch.get_num_threads(), "libraries": status,
        "windows": windows, "window_seconds": window_seconds,
        "data": {name: description for name, (_, _, description) in data.items()},
        "distinct_pair_fraction": {b: distinct_pair_fraction(*data["frappe"][:2], b) for b in (128, 1024, 4096)},
        "training": pd.DataFrame(speed_rows), "memory": pd.DataFrame(memory_rows),
        "explanations": explanation_latency(data_dir, runs=3 if quick else 5),
        "deep_explanations": deep_explanation_latency(*((100, 4) if quick else (2000, 16))),
    }


def deep_explanation_latency(rows: int = 2000, references: int = 16) -> dict:
    """The function-level interactions of a DeepFM over 39 Criteo-shaped fields (741 pairs; MLP 400-400-400,
    k = 16) on `rows` rows with R references: every pair's mixed difference from predictions alone."""
    sizes = criteo_field_sizes()
    offsets = _field_offsets(sizes)
    split = lambda n, seed: Split(_zipf_rows(sizes, n, seed=seed) + offsets,  # noqa: E731
                                  np.where(np.arange(n) % 4 == 0, 1.0, -1.0).astype(np.float32))
    dataset = Dataset("criteo-shaped", [f"f{i}" for i in range(len(sizes))], [f"v{i}" for i in range(sum(sizes))],
                      {"train": split(1000, 1), "validation": split(100, 2), "test": split(rows, 3)}, {"kind": "random"})
    torch.manual_seed(0)
    model = build_model(ModelConfig("deepfm", dataset.num_features, dataset.num_fields, 16,
                                    **deep_settings("deepfm", 16))).eval()
    started = time.perf_counter()
    interactions(model, dataset, "test", sample=None, reference_count=references)
    return {"fields": len(sizes), "pairs": len(sizes) * (len(sizes) - 1) // 2, "rows": rows,
            "references": references, "seconds": time.perf_counter() - started, "threads": torch.get_num_threads()}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def headline_line(results: dict) -> str:
    """The benchmark's last line: AFM at t=256, batch 1024, on Frappe-shaped data, against the peers' best
    configuration, and as a fraction of the distinct-work limit."""
    table = results["training"]
    data, model, t, batch = HEADLINE
    row = table[(table.data == data) & (table.model == model) & (table.t == t) & (table.batch == batch)].iloc[0]
    fraction = row["ours_samples_s"] / row["work_limit_samples_s"]  # of the distinct-work limit
    return f"speedup_vs_fastest_peer={row['speedup_vs_fastest_peer']:.2f} fraction_of_matmul_limit={fraction:.2f}"
