"""Where the project keeps things on a user's machine: a flag, else an environment variable, else a
per-user directory (platformdirs)."""
from __future__ import annotations

import os
from pathlib import Path


def user_directory(flag: str | os.PathLike | None, variable: str, kind: str, name: str) -> Path:
    """`flag`, else `$variable`, else `name` in the per-user `kind` ("data" or "cache") directory."""
    if flag:
        return Path(flag).expanduser()
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    import platformdirs

    base = platformdirs.user_data_dir if kind == "data" else platformdirs.user_cache_dir
    return Path(base("afm-explorer")) / name
