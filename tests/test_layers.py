"""The shape of the library: layers as folders that import only the folders below them (import-linter's
contracts in pyproject.toml), no import circles, a short top level, and code that asks for a model family's
capabilities instead of its name."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["afm.cli", "afm.bench", "afm.experiments", "afm.training", "afm.explain", "afm.store", "afm.models",
          "afm.data", "afm.fast", "afm.core"]


def test_the_import_contracts_are_kept():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_the_contract_lists_every_folder_of_afm():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    folders = {f"afm.{p.name}" for p in (ROOT / "afm").iterdir() if (p / "__init__.py").is_file()}
    assert layers == LAYERS and set(layers) == folders


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: the same library with one import from a lower layer to a higher one."""
    shutil.copytree(ROOT / "afm", tmp_path / "afm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    metrics = tmp_path / "afm" / "core" / "metrics.py"
    metrics.write_text(metrics.read_text(encoding="utf-8") + "\nfrom afm.training import loop  # noqa\n",
                       encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                          "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"],
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "afm.core.metrics -> afm.training.loop" in run.stdout


def test_the_top_level_of_afm_has_at_most_twelve_entries():
    entries = sorted(p.name for p in (ROOT / "afm").iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries


def test_family_names_are_spelled_out_only_where_families_are_defined():
    """Outside afm/models (where each family names itself) and the settings table, code asks for a
    capability; where the paper's protocol or the app's FM vs AFM default needs the two families by name,
    it takes afm.models' FM_KIND and AFM_KIND. What is left (3): p_start's value 'fm' ("start as exactly the
    FM"), a setting's value on the command line and in results files, not a family name, in the three
    places that run FM+A (ablation, studies, verdict)."""
    literal = re.compile(r"""["'](fm|afm)["']""")
    found = []
    for path in sorted(ROOT.glob("**/*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("afm/models/", "tests/", ".venv/")) or relative == "afm/core/settings.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{relative}:{number}: {line.strip()}" for _ in literal.finditer(line)]
    assert len(found) <= 3, "\n".join(found)


def test_the_package_pins_are_the_requirements_pins():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = {line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()}
    assert set(config["project"]["dependencies"]) <= pins
