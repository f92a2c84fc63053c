"""The paper's MovieLens-tag task built from a MovieLens tags file.

Fields user, movie, tag. Every tag application is a +1 instance; each gets 2 -1 instances with the same
user and movie and a tag drawn uniformly from the tags that user never applied to that movie (NFM's
protocol). Then a seeded 7:2:1 split. Accepted inputs: ML-10M `tags.dat` (`::`), its `;`-separated
variant, the ml-latest `tags.csv`, each optionally gzipped, or `ml-10m.zip` itself (whose `movies.dat`
then names the movies).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.errors import DataError
from afm.data.dataset import Dataset, draw_negatives, random_split
from afm.data.source import Source
from afm.data.textfile import decode_text, read_bytes

ZIP_TAGS, ZIP_MOVIES = "ml-10M100K/tags.dat", "ml-10M100K/movies.dat"
NEGATIVES_PER_POSITIVE = 2
TAGS_CANDIDATES = (
    "movielens/ml-10m.zip",
    "movielens/tags.csv",
    "movielens/tags.dat",
    "ml-tag/fallback/ml-10m.tags.semicolon.dat.gz",  # the team's shared copy of ML-10M tags
)


def parse_tags(text: str, path: Path) -> pd.DataFrame:
    """user, movie, tag columns from any of the three tag-file layouts."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise DataError(f"{path}: empty file, no tag applications found")
    if first.replace(" ", "").lower().startswith("userid,movieid,tag"):
        try:
            frame = pd.read_csv(io.StringIO(text), dtype={"tag": str}, keep_default_na=False)
            frame = frame.rename(columns={"userId": "user", "movieId": "movie"})[["user", "movie", "tag"]]
            frame["user"] = frame["user"].astype(np.int64)
            frame["movie"] = frame["movie"].astype(np.int64)
        except (ValueError, KeyError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: not a MovieLens tags.csv ({exc})") from None
        return frame
    sep = "::" if "::" in first else ";"
    users, movies, tags = [], [], []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        # Tags may contain the separator: user and movie from the left, the timestamp from the right.
        head = line.split(sep, 2)
        if len(head) < 3 or sep not in head[2]:
            raise DataError(f"{path}:{lineno}: expected user{sep}movie{sep}tag{sep}timestamp")
        tag, _, stamp = head[2].rpartition(sep)
        if not (head[0].strip().isdigit() and head[1].strip().isdigit() and stamp.strip().isdigit()):
            raise DataError(f"{path}:{lineno}: user, movie and timestamp must be integers")
        users.append(int(head[0]))
        movies.append(int(head[1]))
        tags.append(tag)
    return pd.DataFrame({"user": users, "movie": movies, "tag": tags})


def read_tags(path: Path) -> tuple[pd.DataFrame, dict[int, str]]:
    """Tag applications and, where the input is the ML-10M zip, movie titles."""
    path = Path(path)
    titles: dict[int, str] = {}
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                text = decode_text(archive.read(ZIP_TAGS), path)
                if ZIP_MOVIES in archive.namelist():
                    for line in decode_text(archive.read(ZIP_MOVIES), path).splitlines():
                        parts = line.split("::")
                        if len(parts) >= 2 and parts[0].isdigit():
                            titles[int(parts[0])] = parts[1]
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise DataError(f"{path}: not the MovieLens 10M archive ({exc})") from None
    else:
        text = decode_text(read_bytes(path), path)
    return parse_tags(text, path), titles


def sample_negatives(user_movie: np.ndarray, tag: np.ndarray, num_tags: int, rng: np.random.Generator) -> np.ndarray:
    """For each positive (user_movie id, tag): NEGATIVES_PER_POSITIVE tags never applied to that
    user_movie, all negatives of one user_movie distinct. Returns (N, NEGATIVES_PER_POSITIVE) tag ids."""
    applied = np.unique(user_movie * num_tags + tag)
    owner = np.repeat(np.arange(len(tag)), NEGATIVES_PER_POSITIVE)
    owner_um = user_movie[owner]
    if ((1 + NEGATIVES_PER_POSITIVE) * np.bincount(user_movie) > num_tags).any():
        raise DataError("too few distinct tags to draw negatives for some (user, movie)")
    drawn = draw_negatives(owner_um, num_tags, lambda _, combo: np.isin(combo, applied), rng)
    return drawn.reshape(len(tag), NEGATIVES_PER_POSITIVE)


def build_movielens(path: Path, seed: int = 0) -> Dataset:
    frame, titles = read_tags(path)
    if frame.empty:
        raise DataError(f"{path}: no tag applications found")
    user_codes, users = pd.factorize(frame["user"], sort=True)
    movie_codes, movies = pd.factorize(frame["movie"], sort=True)
    tag_codes, tags = pd.factorize(frame["tag"], sort=True)
    n_users, n_movies, n_tags = len(users), len(movies), len(tags)
    rng = np.random.default_rng(seed)
    user_movie = user_codes.astype(np.int64) * n_movies + movie_codes
    _, um_ids = np.unique(user_movie, return_inverse=True)
    negatives = sample_negatives(um_ids.astype(np.int64), tag_codes.astype(np.int64), n_tags, rng)

    base = np.stack([user_codes, n_users + movie_codes], axis=1).astype(np.int64)
    tag_offset = n_users + n_movies
    x = np.concatenate([
        np.column_stack([base, tag_offset + tag_codes]),
        *[np.column_stack([base, tag_offset + negatives[:, j]]) for j in range(NEGATIVES_PER_POSITIVE)],
    ])
    y = np.concatenate([np.ones(len(frame)), -np.ones(NEGATIVES_PER_POSITIVE * len(frame))]).astype(np.float32)
    feature_names = ([f"user={u}" for u in users]
                     + [f"movie={titles.get(int(m), m)}" for m in movies]
                     + [f"tag={t}" for t in tags])
    return Dataset(name="movielens", field_names=["user", "movie", "tag"], feature_names=feature_names,
                   splits=random_split(x, y, seed), source={"kind": "movielens", "path": str(Path(path).resolve()), "seed": seed},
                   task="binary",
                   notes=f"built from {Path(path).name}: {len(frame)} tag applications, {n_users} users, "
                         f"{n_movies} movies, {n_tags} tags, {NEGATIVES_PER_POSITIVE} sampled negatives each")


def find_tags(directory: Path) -> Path | None:
    """The first MovieLens tags file of TAGS_CANDIDATES in a data directory."""
    for relative in TAGS_CANDIDATES:
        if (Path(directory) / relative).is_file():
            return Path(directory) / relative
    return None


def load_movielens(directory: Path, seed: int = 0) -> Dataset:
    tags = find_tags(directory)
    if tags is None:
        raise DataError(f"no MovieLens tags file in {directory} (looked for {', '.join(TAGS_CANDIDATES)}); "
                        f"run: python -m afm download movielens")
    return build_movielens(tags, seed=seed)


def movielens_status(directory: Path) -> dict:
    tags = find_tags(directory)
    return {"available": tags is not None, "where": str(tags or Path(directory) / "movielens"),
            "get": "" if tags else "python -m afm download movielens"}


# The paper's settings for MovieLens (embedding size 256, Adagrad, batch 4096, 100 epochs).
SOURCE = Source("movielens", "the paper's MovieLens-tag task (user, movie, tag) built from a MovieLens tags file",
                load=lambda spec, directory, target=None, seed=0: load_movielens(directory, seed),
                recorded=lambda spec, directory: build_movielens(Path(spec["path"]), seed=spec.get("seed", 0)),
                status=movielens_status,
                presets={"embed_dim": 256, "epochs": 100, "batch_size": 4096, "optimizer": "adagrad"},
                quick={"embed_dim": 64, "epochs": 6})
