"""`python -m afm bench`: training speed of our FM and AFM beside DeepCTR-Torch and pytorch-fm, the matmul
limit of AFM's attention network, explanation latency, peak memory and (where Chromium is here) the app.

Every library trains the same data (the Frappe train split where it is in the data directory, else random
rows of Frappe's field sizes; MovieLens-shaped random rows, 3 fields and 90,445 features) with the same k,
t, batch size, optimizer (Adagrad) and squared loss, no dropout. The libraries' timing windows alternate
(the order rotating each round), so machine noise falls on all of them alike; figures are medians.
The peers are optional (requirements-bench.txt); a missing one is reported and skipped.
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

from afm.data import Dataset, Split, load_dataset
from afm.errors import AFMError
from afm.models import ModelConfig, build_model
from afm.training import TrainConfig, build_optimizer, resolve_device

EMBED_DIM = 256
FRAPPE_FIELD_SIZES = [957, 4082, 7, 7, 2, 3, 2, 9, 80, 233]
MOVIELENS_FIELD_SIZES = [17045, 23743, 49657]  # the paper's ml-tag: users, movies, tags (90,445 features)
PEERS = ("deepctr-torch", "torchfm")
HEADLINE = ("frappe", "afm", 256, 1024)  # (data, model, t, batch) of the last line


@dataclass(frozen=True)
class Case:
    data: str  # "frappe" or "movielens" (shaped)
    model: str  # "fm" or "afm"
    attention_factor: int  # t; 0 for FM
    batch_size: int


def cases(quick: bool) -> list[Case]:
    if quick:
        return [Case("frappe", "afm", 256, 1024), Case("frappe", "afm", 16, 1024), Case("frappe", "fm", 0, 1024),
                Case("movielens", "afm", 16, 4096), Case("movielens", "fm", 0, 4096)]
    frappe = [Case("frappe", "afm", t, b) for t in (256, 16) for b in (128, 1024, 4096)]
    frappe += [Case("frappe", "fm", 0, b) for b in (128, 1024, 4096)]
    movielens = [Case("movielens", "afm", t, b) for t in (256, 16) for b in (1024, 4096)]
    movielens += [Case("movielens", "fm", 0, b) for b in (1024, 4096)]
    return frappe + movielens


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
        x, field_of = dataset.splits["train"].x, dataset.feature_field
        local = np.empty_like(x)
        for f in range(dataset.num_fields):  # global feature ids -> each field's own 0..size-1
            local[:, f] = np.searchsorted(np.flatnonzero(field_of == f), x[:, f])
        sizes = np.bincount(field_of, minlength=dataset.num_fields).tolist()
        return local, sizes, "the Frappe train split (reconstructed)"
    return _random_rows(MOVIELENS_FIELD_SIZES, 200_000), MOVIELENS_FIELD_SIZES, "random rows of ml-tag's field sizes"


# --- the libraries, each as a (step function, trainable model) for one case -------------------------------

def _ours(case: Case, sizes: list[int], device: torch.device):
    n, m = sum(sizes), len(sizes)
    model = build_model(ModelConfig(case.model, n, m, EMBED_DIM, max(case.attention_factor, 1))).to(device)
    optimizer = build_optimizer(model, TrainConfig(batch_size=case.batch_size, lr=0.01, optimizer="adagrad"), m, n)
    offsets = torch.as_tensor(_field_offsets(sizes), device=device)
    return model, optimizer, lambda ids: ids + offsets  # global feature ids


def _torchfm(case: Case, sizes: list[int], device: torch.device):
    from torchfm.model.afm import AttentionalFactorizationMachineModel
    from torchfm.model.fm import FactorizationMachineModel

    if case.model == "fm":
        model = FactorizationMachineModel(sizes, EMBED_DIM)
    else:
        model = AttentionalFactorizationMachineModel(sizes, EMBED_DIM, case.attention_factor, dropouts=(0.0, 0.0))
    model = model.to(device)
    return model, torch.optim.Adagrad(model.parameters(), lr=0.01), lambda ids: ids  # it adds field offsets


def _deepctr(case: Case, sizes: list[int], device: torch.device):
    _import_deepctr_offline()
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import AFM

    columns = [SparseFeat(f"f{i}", size, embedding_dim=EMBED_DIM) for i, size in enumerate(sizes)]
    # use_attention=False is DeepCTR's standard FM (its documentation says so)
    model = AFM(columns, columns, use_attention=case.model == "afm", attention_factor=max(case.attention_factor, 1),
                l2_reg_linear=0, l2_reg_embedding=0, l2_reg_att=0, afm_dropout=0, task="regression", device=str(device))
    return model, torch.optim.Adagrad(model.parameters(), lr=0.01), lambda ids: ids.float()  # its input format


LIBRARIES = {"ours": _ours, "deepctr-torch": _deepctr, "torchfm": _torchfm}


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
        trainers[library] = _Trainer(library, case, rows, sizes, device)
        trainers[library].calibrate(window_seconds)
    speeds = alternated({name: trainer.window for name, trainer in trainers.items()}, windows)
    if case.model == "afm" and case.data == HEADLINE[0] and case.attention_factor == HEADLINE[2] \
            and case.batch_size == HEADLINE[3]:
        limit = _matmul_limit(case, len(sizes), windows, window_seconds, torch.device(device))
        speeds["matmul_limit"] = limit
    return speeds


def _matmul_limit(case: Case, num_fields: int, windows: int, window_seconds: float, device: torch.device) -> float:
    """Samples/s if a step did nothing but the attention network's three matmuls over every (row, pair):
    forward (B*P x k)(k x t), and backward's input and weight gradients."""
    rows = case.batch_size * num_fields * (num_fields - 1) // 2
    k, t = EMBED_DIM, case.attention_factor
    products, weight, grad = (torch.randn(shape, device=device) for shape in ((rows, k), (t, k), (rows, t)))

    def three_matmuls():
        products @ weight.T, grad @ weight, grad.T @ products
        _synchronize(device)

    for _ in range(2):
        three_matmuls()
    started = time.perf_counter()
    three_matmuls()
    repeats = max(1, math.ceil(window_seconds / (time.perf_counter() - started)))

    def window():
        started = time.perf_counter()
        for _ in range(repeats):
            three_matmuls()
        return repeats * case.batch_size / (time.perf_counter() - started)

    return alternated({"matmul": window}, windows)["matmul"]


def distinct_pair_fraction(rows: np.ndarray, sizes: list[int], batch_size: int, batches: int = 20) -> float:
    """Share of a batch's (row, pair) cells that are distinct feature pairs: what AFM computes per step,
    counted by the model's own `distinct_pairs`."""
    model = build_model(ModelConfig("afm", sum(sizes), len(sizes), embed_dim=1, attention_factor=1))
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
    from afm.explain import decompose, explain_split
    from afm.interactions import interactions
    from afm.statistics import attention_shape, faithfulness_summary, pair_statistics, planted_precision

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
    model = build_model(ModelConfig("afm", dataset.num_features, dataset.num_fields, EMBED_DIM, 256))
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
    from afm.allocator import retain_freed_memory

    retain_freed_memory()  # as `afm train` runs
    trainer = _Trainer(library, case, rows, sizes, device)
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
    data = {name: bench_data(name, data_dir) for name in ("frappe", "movielens")}
    speed_rows = []
    for case in only or cases(quick):
        rows, sizes, _ = data[case.data]
        speeds = training_speed(case, rows, sizes, libraries, windows, window_seconds, device)
        row = {"data": case.data, "model": case.model, "t": case.attention_factor or None, "batch": case.batch_size,
               **{f"{name}_samples_s": speeds[name] for name in libraries}}
        peers = [speeds[name] for name in libraries if name != "ours"]
        row["speedup_vs_fastest_peer"] = speeds["ours"] / max(peers) if peers else float("nan")
        if "matmul_limit" in speeds:
            row["matmul_limit_samples_s"] = speeds["matmul_limit"]
        speed_rows.append(row)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    data_name, _, t, batch = HEADLINE
    rows, sizes, _ = data[data_name]
    memory_rows = [{"library": name, "model": kind,
                    **peak_memory(name, Case(data_name, kind, t if kind == "afm" else 0, batch), rows, sizes, device)}
                   for name in libraries for kind in ("fm", "afm")]
    return {
        "device": _device_name(device), "threads": torch.get_num_threads(), "libraries": status,
        "windows": windows, "window_seconds": window_seconds,
        "data": {name: description for name, (_, _, description) in data.items()},
        "distinct_pair_fraction": {b: distinct_pair_fraction(*data["frappe"][:2], b) for b in (128, 1024, 4096)},
        "training": pd.DataFrame(speed_rows), "memory": pd.DataFrame(memory_rows),
        "explanations": explanation_latency(data_dir, runs=3 if quick else 5),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def headline_line(results: dict) -> str:
    """The benchmark's last line: AFM at t=256, batch 1024, on Frappe-shaped data."""
    table = results["training"]
    data, model, t, batch = HEADLINE
    row = table[(table.data == data) & (table.model == model) & (table.t == t) & (table.batch == batch)].iloc[0]
    fraction = row["ours_samples_s"] / row["matmul_limit_samples_s"]
    return f"speedup_vs_fastest_peer={row['speedup_vs_fastest_peer']:.2f} fraction_of_matmul_limit={fraction:.2f}"
