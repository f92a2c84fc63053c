"""Training in a background thread, so a user interface can show progress and offer a stop button while
the work goes on. The thread never touches the interface: it only updates a snapshot under a lock."""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from afm.core.errors import AFMError
from afm.data.dataset import Dataset
from afm.data.permuted import permute_labels
from afm.training.sets import train_set
from afm.training.workflows import train_and_save


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
    stage: str = ""  # what is training now, where a job trains several models ("FM", "AFM")
    histories: dict = field(default_factory=dict)  # stage -> history, of every stage so far
    warning: str = ""  # finished, but not as hoped (no epoch beat the initialisation)
    stop_requested: float = 0.0  # when Stop was pressed (time.time()), 0 if never
    halted: float = 0.0  # when training saw the request and left its loop; saving and measuring follow
    stage_started: float = 0.0  # when the current stage began (a job of several models times each alone)


_RUNNING: "weakref.WeakSet[BackgroundJob]" = weakref.WeakSet()
EXIT_WAIT_SECONDS = 60.0


@atexit.register
def stop_running_jobs() -> None:
    """At interpreter exit, ask every running job to stop and wait for it: a daemon thread killed inside
    PyTorch's or numba's native code aborts the whole process ("terminate called without an active
    exception", status 134), so the app, its tests and the CLI could never exit cleanly with a job running."""
    jobs = [job for job in list(_RUNNING) if job.running]
    for job in jobs:
        job.stop()
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for job in jobs:
        job.wait(max(0.0, deadline - time.monotonic()))


class BackgroundJob:
    """A thread that trains, a snapshot of its progress under a lock, and a stop request. Subclasses
    implement `_run`, report through `_progress` and end with `_finish`. Running jobs are stopped and
    waited for when the interpreter exits (`stop_running_jobs`)."""

    def __init__(self, name: str):
        self._state = JobState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _RUNNING.add(self)

    def start(self):
        with self._lock:
            self._state.status, self._state.started = "running", time.time()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask training to end after the current batch; the best epoch so far is kept."""
        with self._lock:
            if not self._state.stop_requested:
                self._state.stop_requested = time.time()
        self._stop.set()

    def _should_stop(self) -> bool:
        """What training asks after every batch; the first yes records when it halted."""
        if not self._stop.is_set():
            return False
        with self._lock:
            if not self._state.halted:
                self._state.halted = time.time()
        return True

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
                            s.started, s.finished, s.stage, {k: list(v) for k, v in s.histories.items()}, s.warning,
                            s.stop_requested, s.halted, s.stage_started)

    def _progress(self, epoch: int, batch: int, batches: int, history: list, stage: str = "") -> None:
        with self._lock:
            if stage != self._state.stage or not self._state.stage_started:
                self._state.stage_started = time.time()
            self._state.epoch, self._state.batch, self._state.batches = epoch, batch, batches
            self._state.history, self._state.stage = list(history), stage
            if stage:
                self._state.histories[stage] = list(history)

    def _run(self) -> None:
        raise NotImplementedError

    def _finish(self, status: str, message: str, path, history) -> None:
        with self._lock:
            self._state.status, self._state.message, self._state.path = status, message, path
            if history:
                self._state.history = list(history)
            self._state.finished = time.time()


def duration(seconds: float) -> str:
    """A duration as a person says it: 0.4 s, 45 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def progress_line(state: JobState, epochs: int | None, now: float | None = None) -> tuple[float, str]:
    """The fraction done and one line: epoch and batch, time so far, and the time left at this pace (an
    upper bound: early stopping may end sooner)."""
    epochs = max(1, epochs or 1)
    began = state.stage_started or state.started  # this stage's pace, where a job trains several models
    elapsed = (now or time.time()) - began if began else 0.0
    if not state.batches:  # no batch reported yet: the model is being built and measured before training
        return 0.0, f"starting: building the model and measuring it before the first epoch · {duration(elapsed)} so far"
    epoch = max(state.epoch, 1)
    in_epoch = state.batch / state.batches if state.batches else 0.0
    done = min(1.0, (epoch - 1 + in_epoch) / epochs)
    line = f"epoch {epoch} of {epochs}, batch {state.batch:,} of {state.batches:,}"
    line += f" · {duration(elapsed)} so far"
    if done > 0 and elapsed > 0:
        line += f" · at most about {duration(elapsed * (1 - done) / done)} left"
    return done, line


class TrainingJob(BackgroundJob):
    def __init__(self, dataset: Dataset, kind: str, out: Path, overrides: dict | None = None,
                 pretrain_dir: Path | None = None, seeds: int = 1, null: bool = False):
        """With `seeds` > 1 the job trains a model set into `out` (afm.store.modelsets); `null`: on permuted
        labels (afm.data.permuted), each member by its own seed."""
        super().__init__(f"train-{kind}")
        self.dataset, self.kind, self.out, self.seeds, self.null = dataset, kind, Path(out), seeds, null
        self.overrides, self.pretrain_dir = dict(overrides or {}), pretrain_dir
        self.epochs = self.overrides.get("epochs")

    def _run(self) -> None:
        try:
            if self.seeds > 1:
                self._run_set()
                return
            data = permute_labels(self.dataset, self.overrides.get("seed") or 0) if self.null else self.dataset
            trained = train_and_save(data, self.kind, self.out, self.overrides, self.pretrain_dir,
                                     on_progress=self._progress, should_stop=self._should_stop)
            result, path, history = trained.result, trained.path, trained.result.history
            if trained.diverged:
                status, message = "failed", trained.divergence_message()
            else:
                status, message = "finished", (f"{result.stop_reason}: best epoch {result.best_epoch}, validation "
                                               f"{result.selected_by} {result.best_validation:.4f}")
                if trained.untrained:
                    with self._lock:
                        self._state.warning = trained.untrained_message()
        except AFMError as exc:
            status, message, path, history = "failed", str(exc), None, []
        except Exception as exc:  # keep the interface alive; say what broke
            status, message, path, history = "failed", f"internal error: {type(exc).__name__}: {exc}", None, []
        self._finish(status, message, path, history)

    def _run_set(self) -> None:
        seed = self.overrides.get("seed") or 0
        lines = []
        try:
            members = train_set(self.dataset, self.kind, self.out, list(range(seed, seed + self.seeds)),
                                {k: v for k, v in self.overrides.items() if k != "seed"}, self.pretrain_dir,
                                log=lines.append, null=self.null, on_progress=self._progress,
                                should_stop=self._should_stop)
            self._finish("finished", f"a set of {len(members)}: " + "; ".join(lines), self.out, [])
        except AFMError as exc:
            self._finish("failed", str(exc), None, [])


class TaskJob(BackgroundJob):
    """Any long computation in the background that reports progress as training does: `task` is called with
    `on_progress` and `should_stop` besides `arguments`; `result` holds what it returned once finished.
    (The app runs the planted-interactions experiment this way.)"""

    def __init__(self, name: str, task, **arguments):
        super().__init__(name)
        self.task, self.settings = task, arguments
        self.result = None

    def _run(self) -> None:
        try:
            self.result = self.task(**self.settings, on_progress=self._progress, should_stop=self._should_stop)
            self._finish("finished", "stopped early: the best epochs so far" if self._stop.is_set() else "", None, [])
        except AFMError as exc:
            self._finish("failed", str(exc), None, [])
        except Exception as exc:  # keep the interface alive; say what broke
            self._finish("failed", f"internal error: {type(exc).__name__}: {exc}", None, [])
