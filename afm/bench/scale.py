"""`python -m afm bench --scale ROWS`: a click log of ROWS rows, prepared and trained as a CTR team would,
beside the peers, every figure from a fresh process (its time and peak resident memory).

On a Criteo-shaped file written by `afm.data.clicklog.write_criteo_like` (13 counts, 26 hashed Zipf
categories; tab-separated, no header):
- reading: `pandas.read_csv` of the file; DeepCTR-Torch's README pipeline (read_csv, fillna, a LabelEncoder
  per category, MinMaxScaler on the counts); `afm prepare` without and with a minimum count.
- training, one epoch, logistic loss, Adagrad, batch 2048, k = t = 16: ours reads the prepared directory
  streamed (samples/s over the epoch's steps); DeepCTR-Torch and pytorch-fm train the same prepared ids
  held in memory, as their pipelines hold them, for a fixed number of steps (their samples/s from those).
  The same optimizer rule as `afm bench` (their best configuration PyTorch allows).
- torchrun with 2 processes on the prepared directory: each rank's peak resident memory beside the size of
  the id columns.
- validation AUC of FM after one epoch, with and without the minimum count.
Peak memory is each process's VmHWM, read while it runs (a torchrun's ranks each).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from afm.core.files import read_small_text
from afm.data.clicklog import write_criteo_like
from afm.models import AFM_KIND, FM_KIND
from afm.models.families import family

PACKAGE = __name__.split(".")[0]  # `python -m` this package
BATCH, K, T, LR = 2048, 16, 16, 0.01
PEER_STEPS = 60  # the peers' training windows: steps of BATCH rows after two warm-up steps
MIN_COUNT = 5


def _tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in read_small_text(Path(f"/proc/{p}/task/{task}/children")).split()]
        except OSError:
            continue
    return found


def _high_water_mb(pid: int) -> float | None:
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(command: list[str], env: dict | None = None, timeout: float = 7200) -> dict:
    """Run a command; its seconds, output, and the peak resident MB of each python process in its tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    peaks: dict[int, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _tree(process.pid):
                mb = _high_water_mb(pid)
                try:
                    is_python = "python" in read_small_text(Path(f"/proc/{pid}/cmdline"))
                except OSError:
                    continue
                if mb is not None and is_python:
                    peaks[pid] = max(peaks.get(pid, 0.0), mb)
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        done.set()
        watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}... failed ({process.returncode}): {err.strip()[-600:]}")
    return {"seconds": time.perf_counter() - started, "peaks_mb": sorted(peaks.values(), reverse=True),
            "stdout": out}


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _child_json(result: dict) -> dict:
    return json.loads(result["stdout"].strip().splitlines()[-1])


READ_CSV = """
import json, time, pandas as pd
from afm.data.clicklog import COLUMNS
t = time.perf_counter(); frame = pd.read_csv({path!r}, sep="\\t", names=COLUMNS)
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": len(frame)}}))
"""

DEEPCTR_PIPELINE = """
import json, time, pandas as pd
from sklearn.preprocessing import LabelEncoder, MinMaxScaler
from afm.data.clicklog import COLUMNS, NUMERIC
t = time.perf_counter()
data = pd.read_csv({path!r}, sep="\\t", names=COLUMNS)
sparse, dense = [c for c in COLUMNS[1:] if c not in NUMERIC], list(NUMERIC)
data[sparse] = data[sparse].fillna("-1")
data[dense] = data[dense].fillna(0)
for feat in sparse:  # DeepCTR-Torch's README, as written
    data[feat] = LabelEncoder().fit_transform(data[feat])
data[dense] = MinMaxScaler(feature_range=(0, 1)).fit_transform(data[dense])
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": len(data)}}))
"""

PREPARE = """
import json, time
from afm.data.clicklog import COLUMNS, NUMERIC
from afm.data.prepared import PrepareSettings, prepare
t = time.perf_counter()
prepare([{path!r}], {out!r}, PrepareSettings("label", tuple(COLUMNS), numeric=NUMERIC, min_count={min_count}),
        log=lambda line: None)
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""

PEER = """
import json, time, numpy as np, torch
from afm.bench.training import Case, _Trainer, available_libraries
available_libraries()
ids = [np.load({out!r} + "/" + s + ".x.npy").astype(np.int64) for s in ("train",)]
sizes = json.load(open({out!r} + "/dataset.json"))["vocabulary_sizes"]
trainer = _Trainer({library!r}, Case("criteo", {kind!r}, {t}, {batch}, {k}), ids[0], sizes)
trainer.step(); trainer.step()
t0 = time.perf_counter()
for _ in range({steps}):
    trainer.step()
print(json.dumps({{"samples_s": {steps} * {batch} / (time.perf_counter() - t0)}}))
"""


def _train_command(directory: Path, kind: str, out: Path, launcher: list[str] | None = None) -> list[str]:
    flags = ["--data", str(directory), "--model", kind, "--embed-dim", str(K), "--epochs", "1", "--batch-size",
             str(BATCH), "--optimizer", "adagrad", "--lr", str(LR), "--loss", "logistic", "--quiet", "--out", str(out),
             "--overwrite"]
    if family(kind).attention:
        flags += ["--attention-factor", str(T)]
    return [*(launcher or [sys.executable]), "-m", PACKAGE, "train", *flags]


def _trained(out: Path) -> dict:
    meta = json.loads((out / "model.json").read_text())
    return {"samples_s": meta["data"]["rows"]["train"] / meta["step_seconds"],
            "validation_auc": meta["metrics"]["validation"]["auc"], "step_seconds": meta["step_seconds"],
            "train_seconds": meta["train_seconds"], "threads": meta.get("threads", {}).get("count")}


def scale_results(result: dict, device: str = "cpu") -> dict:
    """The results file: the provenance header every results file has, and the figures."""
    from afm.core.provenance import git_state, library_versions
    from afm.experiments.results import SCHEMA, SCHEMA_VERSION

    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "kind": "scale", "quick": False,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_state(), "versions": library_versions(),
            "device": device, "data": {"name": "criteo-like", "generator": "afm.data.clicklog.write_criteo_like",
                                       "seed": 1, "rows": result["rows"]}, "scale": result}


def scale_bench(rows: int, folder: str | os.PathLike, log=print, peers: bool = True,
                kinds: tuple[str, ...] = (FM_KIND, AFM_KIND, "deepfm")) -> dict:
    """Every figure of the module's docstring for a generated file of `rows` rows, in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"criteo-like-{rows}.tsv"
    if not path.is_file():
        log(f"writing {path} ({rows:,} rows)")
        write_criteo_like(path.with_suffix(".partial"), rows, seed=1).replace(path)
    result = {"rows": rows, "file_bytes": path.stat().st_size, "reading": [], "training": [], "settings": {
        "batch_size": BATCH, "embed_dim": K, "attention_factor": T, "lr": LR, "optimizer": "adagrad",
        "loss": "logistic", "peer_steps": PEER_STEPS, "min_count": MIN_COUNT}}

    def reading(name: str, code: str, **extra) -> None:
        done = measure(_python(code))
        row = {"what": name, "seconds": _child_json(done)["seconds"], "peak_mb": done["peaks_mb"][0], **extra}
        result["reading"].append(row)
        log(f"{name}: {row['seconds']:.1f} s, peak {row['peak_mb']:.0f} MB")

    reading("pandas.read_csv", READ_CSV.format(path=str(path)))
    if peers:
        reading("DeepCTR-Torch README pipeline", DEEPCTR_PIPELINE.format(path=str(path)))
    prepared = {}
    for min_count in (1, MIN_COUNT):
        prepared[min_count] = folder / f"prepared-{rows}-min{min_count}"
        reading(f"afm prepare, min count {min_count}",
                PREPARE.format(path=str(path), out=str(prepared[min_count]), min_count=min_count))
    meta = json.loads((prepared[MIN_COUNT] / "dataset.json").read_text())
    id_bytes = sum((prepared[MIN_COUNT] / f"{s}.x.npy").stat().st_size for s in meta["rows"])
    result["prepared"] = {"rows": meta["rows"], "features": {str(c): int(sum(json.loads(
        (prepared[c] / "dataset.json").read_text())["vocabulary_sizes"])) for c in prepared}, "id_bytes": id_bytes}

    for kind in kinds:
        out = folder / f"model-{kind}"
        done = measure(_train_command(prepared[MIN_COUNT], kind, out))
        row = {"library": "ours (streamed)", "model": kind, **_trained(out), "peak_mb": done["peaks_mb"][0]}
        result["training"].append(row)
        log(f"ours {kind}: {row['samples_s']:,.0f} samples/s, peak {row['peak_mb']:.0f} MB, "
            f"validation AUC {row['validation_auc']:.4f}")
        for library in ("deepctr-torch", "torchfm") if peers else ():
            code = PEER.format(out=str(prepared[MIN_COUNT]), library=library, kind=kind, t=T if family(kind).attention else 0,
                               batch=BATCH, k=K, steps=PEER_STEPS)
            try:
                done = measure(_python(code))
            except RuntimeError as exc:
                log(f"{library} {kind}: {exc}")
                continue
            row = {"library": library, "model": kind, "samples_s": _child_json(done)["samples_s"],
                   "peak_mb": done["peaks_mb"][0]}
            result["training"].append(row)
            log(f"{library} {kind}: {row['samples_s']:,.0f} samples/s, peak {row['peak_mb']:.0f} MB")

    out = folder / "model-fm-min1"
    measure(_train_command(prepared[1], FM_KIND, out))
    fm = next(r for r in result["training"] if r["model"] == FM_KIND and r["library"].startswith("ours"))
    result["min_count"] = {"fm_validation_auc": {"1": _trained(out)["validation_auc"],
                                                 str(MIN_COUNT): fm["validation_auc"]}}
    log(f"FM validation AUC: min count 1 {result['min_count']['fm_validation_auc']['1']:.4f}, "
        f"min count {MIN_COUNT} {fm['validation_auc']:.4f}")

    out = folder / "model-fm-torchrun"
    done = measure(_train_command(prepared[MIN_COUNT], FM_KIND, out, [sys.executable, "-m", "torch.distributed.run",
                                                                  "--standalone", "--nproc_per_node=2"]),
                   env={"OMP_NUM_THREADS": "1"})
    ranks = done["peaks_mb"][:2]  # the two ranks (torchrun's own process is smaller)
    result["torchrun"] = {"processes": 2, "rank_peak_mb": ranks, "id_columns_mb": id_bytes / 2**20,
                          "validation_auc": _trained(out)["validation_auc"], "seconds": done["seconds"]}
    log(f"torchrun, 2 ranks: peaks {', '.join(f'{mb:.0f}' for mb in ranks)} MB; id columns {id_bytes / 2**20:.0f} MB")
    return result
