"""Mini-batch training with early stopping on a validation metric, the best epoch restored.

Squared loss (the paper's, on -1/+1 targets): the mean squared error plus lambda * sum(W^2) / B on the
attention weights W. The authors minimise 0.5 * sum(err^2) + lambda * 0.5 * sum(W^2) per batch; dividing
that by B/2 gives ours, so `l2_attention` takes their lambda unchanged. Logistic loss (the CTR field's):
the model's output is a logit, the loss the mean binary cross-entropy plus the same penalty. The best
epoch is the one with the lowest validation RMSE (squared) or logloss (logistic).

Under torchrun the same loop runs data-parallel (afm.training.distributed). With Adagrad, embedding gradients are
sparse where a batch touches few of a table's rows (`SPARSE_ROWS_PER_ID`), and `afm.fast.optim.RowAdagrad`
updates only those rows: Adagrad leaves rows with a zero gradient unchanged, so the result is the same and
large tables train faster; elsewhere the fused dense step is faster (docs/performance.md).

A loss that becomes NaN or infinite ends training with stop_reason "diverged" and a message in the result;
the model holds its best epoch, as after any other stop.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from afm.core import settings
from afm.core.errors import AFMError
from afm.core.metrics import selection_metric
from afm.data.dataset import Dataset
from afm.data.permuted import is_null
from afm.fast.optim import RowAdagrad
from afm.fast.threads import choose_threads, threads
from afm.models.inference import evaluate
from afm.training import distributed
from afm.training.batches import batch_source


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; each setting's meaning and bounds are in `afm.core.settings`. The defaults are
    the paper's FM settings on Frappe; runs take theirs from `afm.models.families.hyperparameters`."""

    epochs: int = 100  # the paper's FM on Frappe
    batch_size: int = 128
    lr: float = 0.01
    optimizer: str = "adagrad"
    l2_attention: float = 0.0  # the authors' lambda
    patience: int = settings.default("patience")
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # 0: chosen when the run starts (afm.fast.threads.choose_threads)

    def __post_init__(self):
        for name, value in self.to_dict().items():
            settings.BY_NAME[name].check(value)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    history: list[dict]  # one row per epoch, epoch 0 = before training
    best_epoch: int
    best_validation: float  # the selection metric at the best epoch
    selected_by: str  # "rmse" or "logloss" (afm.core.metrics.selection_metric)
    stop_reason: str  # "finished", "early stopping", "stopped", "interrupted", "diverged"
    seconds: float
    device: str
    extra: dict = field(default_factory=dict)
    message: str = ""  # why training diverged

    @property
    def best_row(self) -> dict:
        """The history row of the best epoch (every metric recorded there)."""
        return next(row for row in self.history if row["epoch"] == self.best_epoch)

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AFMError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AFMError("device 'cuda' was asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AFMError("device 'mps' was asked for, but it is not available here; use --device cpu")
    return device


def available_devices() -> list[str]:
    """Device choices for a user interface: auto and cpu always, accelerators where present."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def check_loss(loss: str, dataset: Dataset) -> None:
    if loss == "logistic" and dataset.task != "binary":
        raise AFMError(f"logistic loss needs a two-valued target; {dataset.name} has a numeric one "
                       f"(use --loss squared)")


ProgressCallback = Callable[[int, int, int, list], None]  # (epoch, batch, batches, history)


def train(model: torch.nn.Module, dataset: Dataset, config: TrainConfig,
          on_progress: ProgressCallback | None = None, should_stop: Callable[[], bool] | None = None,
          show_progress: bool = False) -> TrainResult:
    """Train in place; the model ends holding the weights of its best validation epoch. On a CPU the thread
    count is chosen when the run starts (afm.fast.threads.choose_threads: one for small work, else the cores
    other processes leave idle) unless `config.threads` names one; the count and why are in `result.extra`."""
    if resolve_device(config.device).type != "cpu":
        return _train(model, dataset, config, on_progress, should_stop, show_progress)
    count, reason = choose_threads(model.config.step_multiply_adds(config.batch_size), config.threads)
    with threads(count):
        result = _train(model, dataset, config, on_progress, should_stop, show_progress)
    result.extra["threads"] = {"count": count, "reason": reason}
    return result


def _train(model: torch.nn.Module, dataset: Dataset, config: TrainConfig, on_progress, should_stop,
           show_progress: bool) -> TrainResult:
    device = distributed.start(resolve_device(config.device))
    rank, ranks = distributed.world()
    torch.manual_seed(config.seed + rank)  # dropout masks, different on each rank
    shuffler = torch.Generator().manual_seed(config.seed)  # the same order on every rank
    model.to(device)
    train_split = dataset.splits["train"]
    check_loss(model.config.loss, dataset)
    logistic = model.config.loss == "logistic"
    metric = f"validation_{selection_metric(model.config.loss)}"
    source = batch_source(train_split, config.batch_size, shuffler, device, logistic, config.seed)
    optimizer = build_optimizer(model, config, dataset.num_fields, dataset.num_features)
    if hasattr(model, "choose_pair_sharing"):  # AFM: decided once, from the first rows, so runs repeat exactly
        model.choose_pair_sharing(source.first_rows(config.batch_size))
    step_model = distributed.wrap(model, device)

    started = time.perf_counter()
    train_rows = train_sample(len(train_split))
    history = [_epoch_row(model, dataset, 0, 0.0, None, train_rows)]  # before training: no loss yet
    best_state, best_epoch, best_value = copy.deepcopy(model.state_dict()), 0, history[0][metric]
    if is_null(dataset.source):  # a null model is a trained one: it fits the permuted labels as well as it can
        best_value = math.inf
    n = len(train_split)
    batches = math.ceil(n / config.batch_size)
    stop_reason, diverged_message = "finished", None
    bar = _progress_bar(batches, show_progress and rank == 0)
    try:
        for epoch in range(1, config.epochs + 1):
            if should_stop is not None and should_stop():  # pressed while the model was built or measured
                stop_reason = "stopped"
                break
            epoch_start = time.perf_counter()
            batches, epoch_batches = source.epoch(rank, ranks)
            report_every = max(1, batches // 50)
            if on_progress is not None:  # the first batch is under way: the page says which epoch, not "starting"
                on_progress(epoch, 0, batches, history)
            model.train()
            loss_sum, rows_seen = 0.0, 0
            if bar is not None:
                bar.reset(total=batches)
                bar.set_description(f"epoch {epoch}/{config.epochs}")
            for b, (x_batch, y_batch, batch_rows) in enumerate(epoch_batches):
                prediction = step_model(x_batch)
                # Sum over this share / global batch * ranks: DDP's mean over ranks is the batch mean.
                if logistic:
                    loss = F.binary_cross_entropy_with_logits(prediction, y_batch, reduction="sum")
                else:
                    loss = (prediction - y_batch).square().sum()
                loss = loss * (ranks / batch_rows)
                if config.l2_attention > 0:
                    loss = loss + config.l2_attention * model.attention_penalty() / batch_rows
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_value = distributed.mean(loss.detach()).item()
                if not math.isfinite(loss_value):
                    diverged_message = (f"the loss became {loss_value} in epoch {epoch} (batch {b + 1}); "
                                        f"try a lower learning rate than {config.lr}")
                    break
                loss_sum += loss_value * batch_rows
                rows_seen += batch_rows
                if bar is not None:
                    bar.update(1)
                if on_progress is not None and (b + 1) % report_every == 0 and b + 1 < batches:
                    on_progress(epoch, b + 1, batches, history)
                if should_stop is not None and should_stop():
                    stop_reason = "stopped"
                    break
            if diverged_message or stop_reason == "stopped":
                break
            history.append(_epoch_row(model, dataset, epoch, time.perf_counter() - epoch_start, loss_sum / rows_seen, train_rows))
            if bar is not None:
                bar.set_postfix(train_rmse=f"{history[-1]['train_rmse']:.4f}", **{metric: f"{history[-1][metric]:.4f}"})
            if history[-1][metric] < best_value:
                best_state, best_epoch, best_value = copy.deepcopy(model.state_dict()), epoch, history[-1][metric]
            if on_progress is not None:
                on_progress(epoch, batches, batches, history)
            if config.patience and epoch - best_epoch >= config.patience:
                stop_reason = "early stopping"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        if bar is not None:
            bar.close()
        use_sparse_gradients(model, False)
    model.load_state_dict(best_state)
    model.eval()
    extra = {"train_metrics_rows": len(train_rows) if train_rows is not None else n,
             "step_seconds": sum(row["seconds"] for row in history),
             "evaluation_seconds": sum(row["evaluation_seconds"] for row in history)}
    return TrainResult(history=history, best_epoch=best_epoch, best_validation=best_value,
                       selected_by=selection_metric(model.config.loss),
                       stop_reason="diverged" if diverged_message else stop_reason,
                       seconds=time.perf_counter() - started, device=str(device), extra=extra,
                       message=diverged_message or "")


def epoch_seconds(model: torch.nn.Module, dataset: Dataset, config: TrainConfig, steps: int = 6) -> float:
    """About how long one epoch of `train` takes here: `steps` real training steps (the first, which may
    compile, left out) and one evaluation batch, scaled to the epoch's batches and evaluated rows, on the
    threads the run would get now (`choose_threads`). The model is changed by the steps: pass a throwaway
    one. A person is told this before a long run starts."""
    device = resolve_device(config.device)
    model.to(device)
    split = dataset.splits["train"]
    n, batch = len(split), min(config.batch_size, len(split))
    rows = torch.as_tensor(split.x[np.random.default_rng(0).integers(0, n, batch * steps)], device=device)
    y = torch.as_tensor(np.array(split.y[:batch]), device=device).clamp(min=0)
    optimizer = build_optimizer(model, config, dataset.num_fields, dataset.num_features)
    count = choose_threads(model.config.step_multiply_adds(batch), config.threads)[0] if device.type == "cpu" else None
    with threads(count) if count else contextlib.nullcontext():
        model.train()
        for step in range(steps):
            if step == 1:
                started = time.perf_counter()
            prediction = model(rows[step * batch:(step + 1) * batch])
            loss = F.binary_cross_entropy_with_logits(prediction, y[:len(prediction)]) \
                if model.config.loss == "logistic" else (prediction - y[:len(prediction)]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        per_batch = (time.perf_counter() - started) / max(1, steps - 1)
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            model(rows[:batch])
        per_scored_row = (time.perf_counter() - started) / batch
    use_sparse_gradients(model, False)
    scored = len(dataset.splits["validation"]) + min(n, TRAIN_METRIC_ROWS)
    return per_batch * math.ceil(n / config.batch_size) + per_scored_row * scored


# Row updates pay for sorting a batch's ids, dense ones for passes over the whole table. With the one-pass
# row update (afm.fast.kernels.adagrad_rows), one thread, windows alternated and calibrated as the benchmark's
# (batch ids per table row in brackets): Frappe FM batch 128 (0.24) rows 1.32x, 512 (0.95) rows 1.03x,
# 1024 (1.9) dense 1.15x, 4096 (7.6) dense 1.09x; Frappe AFM at 1024 level; ml-tag batch 4096 (0.14) rows
# 1.34x (FM) and 1.39x (AFM, t = 16).
SPARSE_ROWS_PER_ID = 1.0


def build_optimizer(model: torch.nn.Module, config: TrainConfig, num_fields: int, num_features: int):
    """The optimizer over the trainable parameters. With Adagrad (and one process: DDP reduces dense
    gradients), embedding gradients are sparse where a batch touches few of a table's rows, and only those
    rows are updated (RowAdagrad). Dense gradients use PyTorch's fused optimizers (one kernel for all
    parameters, CPU or CUDA)."""
    params = [p for p in model.parameters() if p.requires_grad]
    on_fused_device = bool(params) and params[0].device.type in ("cpu", "cuda")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, fused=on_fused_device or None)
    sparse = (distributed.world()[1] == 1
              and config.batch_size * num_fields * SPARSE_ROWS_PER_ID < num_features)
    use_sparse_gradients(model, sparse)
    return RowAdagrad(params, lr=config.lr, fused=on_fused_device or None)


def use_sparse_gradients(model: torch.nn.Module, sparse: bool) -> None:
    """Every nn.Embedding of the model gives sparse (True) or dense gradients."""
    if sparse:
        torch.sparse.check_sparse_tensor_invariants.disable()  # Adagrad builds them; opting out silences a warning
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            module.sparse = sparse


TRAIN_METRIC_ROWS = 20_000  # train-split metrics each epoch on this fixed sample: a fraction of an epoch's cost


def train_sample(n: int) -> np.ndarray | None:
    """The fixed, seeded rows of the train split its per-epoch metrics are measured on (None: all of them).
    Validation is always scored whole: it picks the best epoch."""
    if n <= TRAIN_METRIC_ROWS:
        return None
    return np.sort(np.random.default_rng(0).choice(n, TRAIN_METRIC_ROWS, replace=False))


def _epoch_row(model, dataset: Dataset, epoch: int, seconds: float, loss: float | None, train_rows=None) -> dict:
    """One row of the history: train (on `train_rows`) and validation RMSE always; logloss and AUC too for a
    logistic model; the seconds of the epoch's steps and of this evaluation."""
    started = time.perf_counter()
    keys = ("rmse", "logloss", "auc") if model.config.loss == "logistic" else ("rmse",)
    row = {"epoch": epoch}
    for split, rows in (("train", train_rows), ("validation", None)):
        metrics = evaluate(model, dataset, split, rows)
        row.update({f"{split}_{key}": metrics[key] for key in keys})
    return {**row, "loss": loss, "seconds": seconds, "evaluation_seconds": time.perf_counter() - started}


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm  # only the terminal needs it

    return tqdm(total=total, unit="batch", leave=False, dynamic_ncols=True)
