"""Reliability, round three: each defect found against the newer surfaces (import, encode, sets, registry,
verdict), as a case that failed before its fix."""
import json
import zipfile

import pytest
import torch

from afm.core.errors import CheckpointError
from afm.data import make_synthetic
from afm.store.importers import import_model, read_state_dict, write_encoded
from afm.store.modelsets import SET_FORMAT
from afm.store.registry import scan_models


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=2, rows=600)


def test_a_state_dict_is_refused_for_what_it_declares_before_anything_is_allocated(tmp_path):
    # 2.5 KB on disk, 8 GB as float32 once materialised: stride 0 shares one value
    torch.save({"embedding.embedding.weight": torch.zeros(1).expand(41, 50_000_000)}, tmp_path / "expanded.pt")
    assert (tmp_path / "expanded.pt").stat().st_size < 10_000
    with pytest.raises(CheckpointError, match="declare .* GiB"):
        read_state_dict(tmp_path / "expanded.pt")
    # a zip record that says it inflates to far more than its bytes
    torch.save({"w": torch.zeros(4)}, tmp_path / "small.pt")
    with zipfile.ZipFile(tmp_path / "small.pt") as src, zipfile.ZipFile(tmp_path / "bomb.pt", "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info.filename))
        out.writestr(zipfile.ZipInfo("small/data/999"), b"\0" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)
    import afm.store.importers as importers

    with pytest.raises(CheckpointError, match="inflate"):
        importers._check_archive(tmp_path / "bomb.pt", limit=32 << 20)


@pytest.mark.parametrize("tensor, message", [
    (torch.zeros(5), "must be a matrix"),  # 1-D embedding
    (torch.zeros(()), "has shape"),  # 0-d
    (torch.zeros(2, 3, 4), "has shape"),  # 3-D
    (torch.zeros(0, 8), "at least one value"),
    (torch.zeros(3, 8).to_sparse(), "sparse"),
    (torch.zeros(3, 8, dtype=torch.int64), "not floating-point"),
    (torch.full((3, 8), 1e300, dtype=torch.float64), "beyond float32's range"),  # inf once stored as float32
])
def test_state_dicts_of_odd_ranks_layouts_and_ranges_get_one_line(tmp_path, data, tensor, message):
    torch.save({"embedding.embedding.weight": tensor, "linear.fc.weight": torch.zeros(3, 1),
                "linear.bias": torch.zeros(1)}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=message):
        import_model("torchfm", tmp_path / "odd.pt", data)


def test_batch_norm_and_directories_are_named_for_what_they_are(tmp_path):
    # batch norm's integer step counter is never read in eval: dropped; its statistics are read (DeepFM, NFM, ...)
    torch.save({"bn.num_batches_tracked": torch.tensor(3), "bn.running_var": torch.ones(2), "w": torch.zeros(2, 2)},
               tmp_path / "bn.pt")
    assert set(read_state_dict(tmp_path / "bn.pt")) == {"bn.running_var", "w"}
    torch.save({"bn.num_batches_tracked": torch.tensor(3.0), "w": torch.zeros(2, 2)}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"num_batches_tracked has shape \(\)"):  # a float scalar: not ours
        read_state_dict(tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_state_dict(tmp_path)
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.")
    with pytest.raises(CheckpointError) as refused:
        read_state_dict(tmp_path / "pickle.pt")
    assert "\x1b[" not in str(refused.value) and len(str(refused.value)) < 400


def test_encode_refuses_a_field_named_like_its_label_column(tmp_path):
    import pandas as pd

    from afm.data.tabular import load_csv

    pd.DataFrame({"label": ["a", "b"] * 20, "x": ["u", "v", "w", "z"] * 10, "y": [0, 1] * 20}).to_csv(
        tmp_path / "t.csv", index=False)
    with pytest.raises(CheckpointError, match="named 'label'"):
        write_encoded(load_csv(tmp_path / "t.csv", "y"), tmp_path / "out")
    assert not (tmp_path / "out" / "train.csv").exists()


def test_one_malformed_model_set_never_takes_down_the_registry(tmp_path, data):
    from afm.training.workflows import fit, save_trained

    save_trained(fit(data, "fm", {"epochs": 1}), data, tmp_path / "good")
    bad = tmp_path / "bad-set"
    bad.mkdir()
    (bad / "set.json").write_text(json.dumps({"format": SET_FORMAT, "members": ["x" * 300]}))
    entries, problems = scan_models(tmp_path, include_builtin=False)
    assert [e.name for e in entries] == ["good"]
    assert any("bad member name" in p for p in problems)


def test_verdict_bounds_are_checked_before_any_work(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    for flags, message in ((["--epoch-cap", "0"], "--epoch-cap 1 to 1000"), (["--trials", "-3"], "--trials takes 1 to"),
                           (["--embed-dim", "0"], "embed-dim")):
        done = subprocess.run([sys.executable, "-m", "afm", "verdict", "--dataset", "synthetic", *flags,
                               "--models-dir", str(tmp_path / "v"), "--out", str(tmp_path / "v.json")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert not (tmp_path / "v").exists()  # refused before a search began


def test_a_set_resumes_only_members_that_are_what_this_run_trains(tmp_path, data):
    from afm.core.errors import AFMError
    from afm.training.sets import train_set

    train_set(data, "fm", tmp_path / "set", [0, 1], {"epochs": 1}, log=lambda *_: None)
    with pytest.raises(AFMError, match="trained with family fm"):
        train_set(data, "afm", tmp_path / "set", [0, 1], {"epochs": 1}, log=lambda *_: None)
    with pytest.raises(AFMError, match="epochs 1 .asked: 2."):
        train_set(data, "fm", tmp_path / "set", [0, 1], {"epochs": 2}, log=lambda *_: None)
    assert len(train_set(data, "fm", tmp_path / "set", [0, 1, 2], {"epochs": 1}, log=lambda *_: None)) == 3
    (tmp_path / "set" / ".seed-3.claim").write_text("12345")  # another process is training seed 3
    with pytest.raises(AFMError, match="being trained by another process"):
        train_set(data, "fm", tmp_path / "set", [3], {"epochs": 1}, log=lambda *_: None)
    with pytest.raises(AFMError, match="is a model directory"):
        train_set(data, "fm", tmp_path / "set" / "seed-0", [0], {"epochs": 1}, log=lambda *_: None)


def test_concurrent_writers_of_one_set_file_never_publish_half_of_it(tmp_path):
    import threading

    from afm.store.modelsets import SET_FILE, write_set_file

    stop, bad = threading.Event(), []

    def write(k):
        while not stop.is_set():
            write_set_file(tmp_path, [f"seed-{i}" for i in range(k * 50)], "fm", {"epochs": k})

    def read():
        for _ in range(2000):
            try:
                json.loads((tmp_path / SET_FILE).read_text())
            except FileNotFoundError:
                continue
            except ValueError as exc:
                bad.append(exc)

    writers = [threading.Thread(target=write, args=(k,)) for k in (1, 2)]
    for w in writers:
        w.start()
    read()
    stop.set()
    for w in writers:
        w.join()
    assert not bad and not list(tmp_path.glob("*.tmp"))


def test_inputs_are_regular_files_size_capped_and_streamed(tmp_path, monkeypatch):
    import gzip
    import os

    from afm.core.errors import DataError
    from afm.data import textfile
    from afm.data.tabular import load_csv
    from afm.experiments.results import committed_results

    os.mkfifo(tmp_path / "pipe.csv")  # a reader of a pipe nobody writes would wait forever
    with pytest.raises(DataError, match="a pipe, not a regular file"):
        load_csv(tmp_path / "pipe.csv", "y")
    with pytest.raises(DataError, match="a device or socket"):
        load_csv("/dev/zero", "y")
    with gzip.open(tmp_path / "bomb.csv.gz", "wb") as fh:  # 8 MB of text from a few kilobytes
        fh.write(b"a,b,y\n" + b"1,2,0\n" * ((8 << 20) // 6))
    monkeypatch.setattr(textfile, "available_memory", lambda: 8 << 20)  # a machine with 8 MB to spare
    with pytest.raises(DataError, match="expands to more than"):
        load_csv(tmp_path / "bomb.csv.gz", "y")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "results" / "pipe.json").symlink_to(tmp_path / "pipe.csv")
    assert committed_results(tmp_path / "results") == {}  # skipped at once, not read forever


@pytest.mark.parametrize("args, message", [
    (["encode", "--data", "synthetic", "--out", ""], "name a folder of its own"),
    (["encode", "--data", "synthetic", "--out", "/"], "name a folder of its own"),
    (["encode", "--data", "synthetic", "--out", "FILE"], "is a file, not a folder"),
    (["train", "--seeds", "2", "--out", "FILE"], "is a file, not a folder"),
    (["interactions", "assets/models/wide-fm-set", "--out", "DIR"], "is a folder; name a results file"),
    (["verdict", "--dataset", "synthetic", "--out", "DIR"], "is a folder; name a results file"),
])
def test_output_paths_are_checked_before_any_work(tmp_path, args, message):
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    args = [str(tmp_path / a) if a in ("FILE", "DIR") else a for a in args]
    done = subprocess.run([sys.executable, "-m", "afm", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not any((tmp_path / "DIR").iterdir()) and (tmp_path / "FILE").read_text() == "x"


def test_results_pages_escape_values_and_name_a_malformed_file(tmp_path):
    from afm.core.errors import AFMError
    from afm.experiments.markdown import markdown_table
    from afm.experiments.tables import results_markdown

    import pandas as pd

    table = markdown_table(pd.DataFrame({"pair": ["a|b"], "note": ["<!-- /results --> x"]}))
    assert table.splitlines()[2].count(" | ") == 1 and "<!--" not in table  # one cell each, no comment opened
    (tmp_path / "verdict-bad.json").write_text(json.dumps({"schema": "afm-explorer-results", "kind": "verdict",
                                                           "comparisons": "oops"}))
    with pytest.raises(AFMError, match="results/verdict-bad.json: not a well-formed verdict"):
        results_markdown(tmp_path)


@pytest.mark.parametrize("junk", [b"\x00\xff garbage\n", b'{"op_code": 99}\n', b"[1, 2]\n"])
def test_a_damaged_search_journal_is_named_in_one_line(tmp_path, data, junk):
    from afm.core.errors import AFMError
    from afm.experiments.tuning import SearchBudget, tune

    (tmp_path / "search.journal").write_bytes(junk)
    with pytest.raises(AFMError, match="search.journal: the search journal cannot be read"):
        tune(data, "fm", {}, SearchBudget(trials=1, epoch_cap=1), tmp_path / "search.journal", "fm", log=lambda *_: None)


def test_a_set_member_linked_from_elsewhere_is_refused(tmp_path, data):
    from afm.store.modelsets import set_members, write_set_file
    from afm.training.workflows import fit, save_trained

    save_trained(fit(data, "fm", {"epochs": 1}), data, tmp_path / "outside")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "seed-0").symlink_to(tmp_path / "outside")
    write_set_file(tmp_path / "set", ["seed-0"], "fm", {})
    with pytest.raises(CheckpointError, match="a link"):
        set_members(tmp_path / "set")


def test_without_a_writable_numba_cache_every_command_still_runs(tmp_path):
    """A read-only install run by a service user: numba finds no folder to cache in and refused every
    cache=True kernel at import, so even --help died. Simulated by leaving numba no cache locator."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import numba.core.caching as c; c.CacheImpl._locator_classes = []\n"
            "import sys; from afm.cli import main\n"
            "sys.exit(main(['train', '--model', 'afm', '--epochs', '1', '--quiet', '--out', sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "no writable cache folder" in done.stderr and done.stderr.count("no writable cache folder") == 1


def test_a_damaged_kernel_cache_is_emptied_and_recompiled(tmp_path):
    """A truncated cache index made every AFM run fail with UnpicklingError until the folder was deleted."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    train = [sys.executable, "-m", "afm", "train", "--model", "afm", "--epochs", "1", "--quiet", "--overwrite",
             "--out", str(tmp_path / "m")]
    first = subprocess.run(train, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-1000:]
    indexes = list((tmp_path / "cache").rglob("*.nbi"))
    assert indexes
    for index in indexes:
        index.write_bytes(b"garbage")
    again = subprocess.run(train, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-1000:]
    assert "compiled-kernel cache was damaged" in again.stderr


def test_results_says_which_files_it_skipped(tmp_path):
    from afm.experiments.results import committed_results

    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "foreign.json").write_text(json.dumps({"hello": 1}))
    problems = []
    assert committed_results(tmp_path, problems) == {}
    assert sorted(p.split(":")[0] for p in problems) == ["broken.json", "foreign.json"]


def test_a_search_journal_is_resumed_only_by_the_same_plan(tmp_path, data):
    from afm.core.errors import AFMError
    from afm.experiments.tuning import SearchBudget, tune

    tune(data, "fm", {}, SearchBudget(trials=1, epoch_cap=1), tmp_path / "j", "fm", log=lambda *_: None)
    tune(data, "fm", {}, SearchBudget(trials=1, epoch_cap=1), tmp_path / "j", "fm", log=pytest.fail)  # resumed
    with pytest.raises(AFMError, match="another budget, data or settings"):
        tune(data, "fm", {}, SearchBudget(trials=1, epoch_cap=2), tmp_path / "j", "fm", log=lambda *_: None)
