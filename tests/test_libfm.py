import gzip

import numpy as np
import pytest

from afm.core.errors import DataError
from afm.data.libfm import load_libfm_dir, read_libfm

GOOD = "1 0:1 3:1 5:1\n-1 1:1 4:1 6:1\n1 2:1 3:1 7:1\n"


def write(path, text, newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode())
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parses_lf_and_crlf(tmp_path, newline):
    x, y = read_libfm(write(tmp_path / "a.libfm", GOOD, newline))
    assert x.tolist() == [[0, 3, 5], [1, 4, 6], [2, 3, 7]]
    assert y.tolist() == [1, -1, 1]
    assert x.dtype == np.int64 and y.dtype == np.float32


def test_parses_gzip_and_skips_blank_lines(tmp_path):
    path = tmp_path / "a.libfm.gz"
    path.write_bytes(gzip.compress((GOOD + "\n\n").encode()))
    x, y = read_libfm(path)
    assert x.shape == (3, 3)


@pytest.mark.parametrize("text, problem, line", [
    ("1 0:1 3:1\n1 0:1 x:1\n", "malformed token 'x:1'", 2),
    ("1 0:1 3:1\n1 0:1 3\n", "malformed token '3'", 2),
    ("1 0:1 3:1\n1 0:1 3:1 5:1\n", "wrong field count: expected 2 features, found 3", 2),
    ("yes 0:1 3:1\n", "bad label 'yes'", 1),
    ("nan 0:1 3:1\n", "bad label 'nan'", 1),
    ("1 0:1 3:0.5\n", "only one-hot features", 1),
    ("1 0:1 -3:1\n", "malformed token '-3:1'", 1),
    ("1 0:1\n", "at least 2 fields", 1),
])
def test_bad_lines_name_file_line_and_problem(tmp_path, text, problem, line):
    path = write(tmp_path / "bad.libfm", text)
    with pytest.raises(DataError) as err:
        read_libfm(path)
    assert f"{path}:{line}:" in str(err.value)
    assert problem in str(err.value)


def test_index_out_of_range_when_feature_count_is_known(tmp_path):
    path = write(tmp_path / "a.libfm", "1 0:1 3:1\n1 0:1 9:1\n")
    with pytest.raises(DataError, match=r":2: feature index 9 out of range \(this data has 5 features\)"):
        read_libfm(path, num_features=5)


@pytest.mark.parametrize("content, problem", [(b"", "empty file"), (b"\n\n", "empty file"),
                                              (b"\x00\x01\x02junk", "binary file")])
def test_empty_and_binary_files(tmp_path, content, problem):
    path = tmp_path / "a.libfm"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem):
        read_libfm(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_libfm(tmp_path / "nope.libfm")


def make_dir(tmp_path, labels=("1", "-1")):
    for split in ("train", "validation", "test"):
        lines = [f"{labels[i % 2]} {i % 3}:1 {3 + i % 2}:1 {5 + i % 4}:1" for i in range(12)]
        write(tmp_path / f"toy.{split}.libfm", "\n".join(lines) + "\n", "\r\n")
    return tmp_path


def test_libfm_directory_becomes_a_dataset(tmp_path):
    ds = load_libfm_dir(make_dir(tmp_path))
    assert ds.name == "toy" and ds.field_names == ["field_0", "field_1", "field_2"]
    assert ds.num_features == 9 and ds.feature_names[4] == "field_1=4"
    assert {s: len(p) for s, p in ds.splits.items()} == {"train": 12, "validation": 12, "test": 12}
    assert ds.task == "binary" and ds.label_range == (-1.0, 1.0)
    assert ds.source == {"kind": "libfm", "path": str(tmp_path.resolve())}


def test_zero_one_labels_become_minus_one_plus_one(tmp_path):
    ds = load_libfm_dir(make_dir(tmp_path, labels=("1", "0")))
    assert sorted(np.unique(ds.splits["train"].y)) == [-1.0, 1.0]


def test_missing_split_and_field_count_mismatch_across_files(tmp_path):
    make_dir(tmp_path)
    (tmp_path / "toy.test.libfm").unlink()
    with pytest.raises(DataError, match="toy.test.libfm is missing"):
        load_libfm_dir(tmp_path)
    write(tmp_path / "toy.test.libfm", "1 0:1 3:1\n")
    with pytest.raises(DataError, match="toy.test.libfm:1: wrong field count: expected 3"):
        load_libfm_dir(tmp_path)
