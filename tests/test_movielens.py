import gzip

import numpy as np
import pandas as pd
import pytest

from afm.core.errors import DataError
from afm.data.movielens import build_movielens, parse_tags


@pytest.fixture(scope="module")
def ml10m(shared_data):
    return build_movielens(shared_data / "ml-tag" / "fallback" / "ml-10m.tags.semicolon.dat.gz", seed=0)


def all_rows(ds):
    x = np.concatenate([ds.splits[s].x for s in ("train", "validation", "test")])
    y = np.concatenate([ds.splits[s].y for s in ("train", "validation", "test")])
    return x, y


def test_counts_and_split_of_the_ml10m_tags(ml10m):
    x, y = all_rows(ml10m)
    assert ml10m.field_names == ["user", "movie", "tag"]
    assert int((y > 0).sum()) == 95580 and int((y < 0).sum()) == 2 * 95580
    assert ml10m.num_features == 4009 + 7601 + 16529
    sizes = [len(ml10m.splits[s]) for s in ("train", "validation", "test")]
    assert sizes == [round(0.7 * len(y)), round(0.2 * len(y)), len(y) - round(0.7 * len(y)) - round(0.2 * len(y))]
    assert ml10m.feature_names[0].startswith("user=") and ml10m.feature_names[-1].startswith("tag=")


def test_negatives_are_tags_the_user_never_applied_to_that_movie(ml10m):
    x, y = all_rows(ml10m)
    applied = set(map(tuple, x[y > 0].tolist()))
    negatives = x[y < 0]
    assert not any(tuple(row) in applied for row in negatives.tolist())
    # Each (user, movie) has exactly 2 negatives per application, all with distinct tags.
    pos_um = pd.Series(list(map(tuple, x[y > 0][:, :2].tolist()))).value_counts()
    neg_um = pd.Series(list(map(tuple, negatives[:, :2].tolist()))).value_counts()
    assert (neg_um.reindex(pos_um.index) == 2 * pos_um).all()
    assert len(np.unique(negatives, axis=0)) == len(negatives)


def test_seeded(shared_data):
    path = shared_data / "ml-tag" / "fallback" / "ml-10m.tags.semicolon.dat.gz"
    a, b, c = (build_movielens(path, seed=s) for s in (0, 0, 1))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_three_layouts_give_the_same_applications(tmp_path):
    rows = [(1, 10, "funny", 5), (1, 10, "dark; twisted", 6), (2, 11, "a::b", 7), (3, 12, "x,y", 8)]
    (tmp_path / "tags.dat").write_text("".join(f"{u}::{m}::{t}::{s}\n" for u, m, t, s in rows))
    (tmp_path / "semi.dat.gz").write_bytes(gzip.compress("".join(f"{u};{m};{t};{s}\r\n" for u, m, t, s in rows).encode()))
    pd.DataFrame(rows, columns=["userId", "movieId", "tag", "timestamp"]).to_csv(tmp_path / "tags.csv", index=False)
    frames = []
    for name in ("tags.dat", "semi.dat.gz", "tags.csv"):
        from afm.data.movielens import read_tags

        frames.append(read_tags(tmp_path / name)[0].reset_index(drop=True))
    expected = pd.DataFrame([r[:3] for r in rows], columns=["user", "movie", "tag"])
    # '::' inside a tag cannot be told apart in the '::' layout; the other two layouts keep it whole.
    pd.testing.assert_frame_equal(frames[1], expected, check_dtype=False)
    pd.testing.assert_frame_equal(frames[2], expected, check_dtype=False)
    assert frames[0]["tag"].tolist()[:2] == ["funny", "dark; twisted"]


def test_bad_tag_lines_are_named(tmp_path):
    with pytest.raises(DataError, match=r":2: expected user::movie::tag::timestamp"):
        parse_tags("1::2::x::3\n1::2\n", tmp_path / "t.dat")
    with pytest.raises(DataError, match=r":1: user, movie and timestamp must be integers"):
        parse_tags("a::2::x::3\n", tmp_path / "t.dat")
    with pytest.raises(DataError, match="empty file"):
        parse_tags("\n", tmp_path / "t.dat")
