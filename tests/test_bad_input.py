"""A corpus of malformed inputs (tests/data/bad) and property-based tests of the parsers: every problem
is one clear message (CLI: exit 2, one line on stderr), never a traceback or a hang."""
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afm.cli import main
from afm.core.errors import AFMError, DataError
from afm.core.limits import check_fits
from afm.data.libfm import parse_libfm
from afm.data.movielens import parse_tags
from afm.data.tabular import load_csv
from afm.models import ModelConfig

BAD = Path(__file__).parent / "data" / "bad"
GOOD_LINE = "1 0:1 3:1 5:1\n-1 1:1 4:1 6:1\n"
LIBFM_PROBLEMS = {
    "empty.libfm.txt": "empty file", "binary_junk.libfm.txt": "binary file",
    "wrong_separator.libfm.txt": "malformed token '0=1'", "ragged.libfm.txt": "wrong field count",
    "negative_index.libfm.txt": "malformed token '-3:1'", "huge_index.libfm.txt": "is too large",
    "label_not_number.libfm.txt": "bad label 'yes'",
}
CSV_PROBLEMS = {
    "nan_target.csv": "target value 'nan' is not a finite number", "inf_feature.csv": "value 'inf' is infinite",
    "missing_target.csv": "no target column 'y'", "single_row.csv": "1 data row(s)",
    "one_field.csv": "1 feature column(s)", "duplicate_headers.csv": "duplicate column name 'a'",
    "header_only.csv": "0 data row(s)",
}


def cli(argv, capsys) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name, problem", LIBFM_PROBLEMS.items())
def test_bad_libfm_files(tmp_path, capsys, name, problem):
    for split in ("validation", "test"):
        (tmp_path / f"toy.{split}.libfm").write_text(GOOD_LINE)
    shutil.copy(BAD / name, tmp_path / "toy.train.libfm")
    code, err = cli(["train", "--data", tmp_path, "--out", tmp_path / "m", "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and problem in err, err
    assert "toy.train.libfm" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name, problem", CSV_PROBLEMS.items())
def test_bad_csv_files(tmp_path, capsys, name, problem):
    code, err = cli(["train", "--data", BAD / name, "--target", "y", "--out", tmp_path / "m", "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and problem in err, err


@pytest.mark.parametrize("name", ["latin1_names.csv", "utf8_names.csv"])
def test_latin1_and_utf8_names_load_alike(name):
    ds = load_csv(Path(__file__).parent / "data" / name, "achat")
    assert "ville=Köln" in ds.feature_names and "boisson=café" in ds.feature_names


def test_a_50_mb_csv_is_refused_by_the_upload_limit(tmp_path):
    from afm.store.uploads import store_upload

    big = b"a,b,y\n" + b"1,2,1\n" * (9 * 2**20)
    assert len(big) > 50 * 2**20
    with pytest.raises(DataError, match="over the 50 MB upload limit"):
        store_upload(big, "big.csv", tmp_path)


def test_a_dataset_too_big_for_memory_is_refused_before_allocating():
    huge = ModelConfig("afm", num_features=50_000_000, num_fields=40, embed_dim=256, attention_factor=256)
    with pytest.raises(AFMError, match="GiB is available"):
        check_fits(huge, batch_size=4096, rows=10_000_000, available=8 * 2**30)
    frappe = ModelConfig("afm", num_features=5382, num_fields=10, embed_dim=256, attention_factor=256)
    check_fits(frappe, 128, 202_027, available=8 * 2**30)  # Frappe at the paper's size fits


def test_a_small_record_is_read_without_allocating_its_limit(tmp_path):
    """A prepared log's vocabularies may be up to 2 GiB, so they are read with that limit; a small file must
    not cost it (a read of n bytes allocates n first: loading a 1M-row log asked malloc for 2 GiB)."""
    import tracemalloc

    from afm.core.files import read_small_text

    path = tmp_path / "vocab.json"
    path.write_text('{"site": ["a", "b"]}')
    tracemalloc.start()
    try:
        assert read_small_text(path, limit=1 << 30) == '{"site": ["a", "b"]}'
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak / 2**20:.0f} MB allocated to read 20 bytes"
    path.write_text("x" * 100)
    with pytest.raises(OSError, match="larger than such a file can be"):
        read_small_text(path, limit=50)
    if Path("/proc/self/status").is_file():  # stat says 0 bytes; the benchmark reads peak memory there
        assert "VmHWM" in read_small_text("/proc/self/status")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("0123456789:-+. \t\r\nabe")), max_size=200))
def test_libfm_parser_only_ever_raises_data_error(text):
    try:
        x, y = parse_libfm(text, Path("fuzz.libfm"))
    except DataError as exc:
        assert "fuzz.libfm" in str(exc)
    else:
        assert x.shape[0] == y.shape[0] > 0 and x.shape[1] >= 2 and (x >= 0).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.text(min_size=1, max_size=12),
                          st.integers(0, 2**31)), min_size=1, max_size=20))
def test_tag_parser_round_trips_semicolon_lines(rows):
    rows = [(u, m, t.replace("\n", " ").replace("\r", " "), s) for u, m, t, s in rows]
    rows = [r for r in rows if r[2].strip() and r[2] == r[2].strip()]
    if not rows:
        return
    text = "".join(f"{u};{m};{t};{s}\n" for u, m, t, s in rows)
    try:
        frame = parse_tags(text, Path("tags.dat"))
    except DataError:
        return  # e.g. a tag that starts like a header; a message, never a crash
    assert frame.user.tolist() == [r[0] for r in rows] and frame.tag.tolist() == [r[2] for r in rows]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_csv_loader_only_ever_raises_data_error(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        load_csv(path, "y")
    except DataError:
        pass
