"""Training in a background thread, so a user interface can show progress and offer a stop button while
the work goes on. The thread never touches the interface: it only updates a snapshot under a lock."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from afm.data.dataset import Dataset
from afm.errors import AFMError
from afm.workflows import train_and_save


@dataclass
class JobState:
    status: str = "waiting"  # waiting, running, finished, failed
    epoch: int = 0
    batch: int = 0
    batches: int = 0
    history: list = field(default_factory=list)
    message: str = ""
    path: Path | None = None
    started: float = 0.0
    finished: float = 0.0


class TrainingJob:
    def __init__(self, dataset: Dataset, kind: str, out: Path, overrides: dict | None = None,
                 pretrain_dir: Path | None = None, seeds: int = 1):
        """With `seeds` > 1 the job trains a model set into `out` (afm.modelsets)."""
        self.dataset, self.kind, self.out, self.seeds = dataset, kind, Path(out), seeds
        self.overrides, self.pretrain_dir = dict(overrides or {}), pretrain_dir
        self.epochs = self.overrides.get("epochs")
        self._state = JobState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{kind}", daemon=True)

    def start(self) -> "TrainingJob":
        with self._lock:
            self._state.status, self._state.started = "running", time.time()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask training to end after the current batch; the best epoch so far is kept and saved."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> JobState:
        self._thread.join(timeout)
        return self.snapshot()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobState:
        with self._lock:
            s = self._state
            return JobState(s.status, s.epoch, s.batch, s.batches, list(s.history), s.message, s.path,
                            s.started, s.finished)

    def _progress(self, epoch: int, batch: int, batches: int, history: list) -> None:
        with self._lock:
            self._state.epoch, self._state.batch, self._state.batches = epoch, batch, batches
            self._state.history = list(history)

    def _run(self) -> None:
        try:
            if self.seeds > 1:
                self._run_set()
                return
            trained = train_and_save(self.dataset, self.kind, self.out, self.overrides, self.pretrain_dir,
                                     on_progress=self._progress, should_stop=self._stop.is_set)
            result, path, history = trained.result, trained.path, trained.result.history
            if trained.diverged:
                status, message = "failed", trained.divergence_message()
            else:
                status, message = "finished", (f"{result.stop_reason}: best epoch {result.best_epoch}, validation "
                                               f"{result.selected_by} {result.best_validation:.4f}")
        except AFMError as exc:
            status, message, path, history = "failed", str(exc), None, []
        except Exception as exc:  # keep the interface alive; say what broke
            status, message, path, history = "failed", f"internal error: {type(exc).__name__}: {exc}", None, []
        self._finish(status, message, path, history)

    def _run_set(self) -> None:
        from afm.modelsets import train_set

        seed = self.overrides.get("seed") or 0
        lines = []
        try:
            members = train_set(self.dataset, self.kind, self.out, list(range(seed, seed + self.seeds)),
                                {k: v for k, v in self.overrides.items() if k != "seed"}, self.pretrain_dir,
                                log=lines.append, on_progress=self._progress, should_stop=self._stop.is_set)
            self._finish("finished", f"a set of {len(members)}: " + "; ".join(lines), self.out, [])
        except AFMError as exc:
            self._finish("failed", str(exc), None, [])

    def _finish(self, status: str, message: str, path, history) -> None:
        with self._lock:
            self._state.status, self._state.message, self._state.path = status, message, path
            if history:
                self._state.history = list(history)
            self._state.finished = time.time()
