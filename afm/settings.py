"""Every setting of a training run, one line each: its type, which part of a run it configures, which
models it applies to, its default per preset, its bounds and its help text. The command-line flags, the
Train page's widgets, the presets, the configs and the results tables are all built from this table, so a
new setting is one new line here.

Presets: the paper's settings for Frappe and MovieLens (embedding size 256, Adagrad, batch 128 / 4096;
AFM t=256, dropout 0.2, lambda 16, lr 0.015 on Frappe; t=8, dropout 0.5, lambda 2, lr 0.1 on MovieLens;
FM lr 0.01, dropout 0.3), and small settings that train in seconds on a laptop CPU for other data.
A preset value given as a pair is (FM's, AFM's).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from afm.errors import AFMError

KINDS = ("fm", "afm")
PRESET_NAMES = ("frappe", "movielens", "default")
BOTH, AFM_ONLY = ("fm", "afm"), ("afm",)


@dataclass(frozen=True)
class Setting:
    name: str
    type: type  # int, float, str or bool
    part: str  # "model" (ModelConfig), "train" (TrainConfig) or "start" (how an AFM starts from an FM)
    models: tuple[str, ...]
    presets: dict  # preset name (or "default", for every other) -> value, or (FM's, AFM's)
    help: str
    low: float | None = None  # smallest allowed value
    below: float | None = None  # values must be smaller than this
    choices: tuple = ()
    pattern: str | None = None  # a regular expression a string value must match, where choices are too few
    flag: str | None = None  # the CLI flag; None: --name-with-dashes. Bools: a switch that sets `switched`
    switched: object = None
    in_results: bool = False  # shown in the results files' settings tables
    widget: bool = True  # on the Train page

    def preset(self, preset_name: str, kind: str):
        value = self.presets.get(preset_name, self.presets["default"])
        return value[KINDS.index(kind)] if isinstance(value, tuple) else value

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value):
        """The value, converted to this setting's type, or an AFMError that says what is allowed."""
        where = f"{self.cli_flag} ({self.name})"
        if self.type is bool:
            if not isinstance(value, bool):
                raise AFMError(f"{where} must be true or false, not {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices) or (
                    self.pattern and not re.fullmatch(self.pattern, value)):
                allowed = f"one of {', '.join(self.choices)}" if self.choices else self.help
                raise AFMError(f"{where} must be {allowed}, not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AFMError(f"{where} must be a number, not {value!r}")
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise AFMError(f"{where} must be a whole number, not {value!r}")
            value = int(value)
        value = self.type(value)
        if not math.isfinite(value):
            raise AFMError(f"{where} must be a finite number, not {value}")
        if self.low is not None and value < self.low:
            raise AFMError(f"{where} must be at least {self.low:g}, not {value:g}")
        if self.below is not None and value >= self.below:
            raise AFMError(f"{where} must be below {self.below:g}, not {value:g}")
        return value


S = Setting
SETTINGS = (
    # model: ModelConfig
    S("embed_dim", int, "model", BOTH, {"default": 16, "frappe": 256, "movielens": 256},
      "k, the size of each feature's embedding (paper: 256)", low=1, in_results=True),
    S("attention_factor", int, "model", AFM_ONLY, {"default": 16, "frappe": 256, "movielens": 8},
      "t, the attention network's hidden size (paper: 256 Frappe, 8 MovieLens)", low=1, in_results=True),
    S("dropout", float, "model", BOTH, {"default": (0.3, 0.2), "frappe": (0.3, 0.2), "movielens": (0.3, 0.5)},
      "dropout on the pooled interaction vector", low=0, below=1, in_results=True),
    S("attention_dropout", float, "model", AFM_ONLY, {"default": 0.0},
      "dropout on the attention weights (the authors used none)", low=0, below=1),
    S("attention", bool, "model", AFM_ONLY, {"default": True},
      "AFM ablation: fix every attention weight a_ij to 1/pairs", flag="--uniform-attention", switched=False,
      widget=False),
    S("learn_p", bool, "model", AFM_ONLY, {"default": True},
      "AFM ablation: fix the projection p to ones, as FM", flag="--fixed-p", switched=False, widget=False),
    S("loss", str, "model", BOTH, {"default": "squared"},
      "squared (the paper's, on -1/+1 targets) or logistic (sigmoid and binary cross-entropy, the CTR field's: "
      "the output is a logit, metrics add AUC and logloss); a user's two-valued target defaults to logistic",
      choices=("squared", "logistic"), in_results=True),
    # train: TrainConfig
    S("epochs", int, "train", BOTH, {"default": 30, "frappe": 100, "movielens": 100},
      "passes over the training split; the best epoch by validation RMSE is kept", low=0),
    S("batch_size", int, "train", BOTH, {"default": 256, "frappe": 128, "movielens": 4096},
      "instances per gradient step (paper: 128 Frappe, 4096 MovieLens)", low=1, in_results=True),
    S("lr", float, "train", BOTH, {"default": 0.01, "frappe": (0.01, 0.015), "movielens": (0.01, 0.1)},
      "learning rate of the optimizer", low=1e-12, in_results=True),
    S("optimizer", str, "train", BOTH, {"default": "adam", "frappe": "adagrad", "movielens": "adagrad"},
      "the optimizer (the paper: Adagrad)", choices=("adagrad", "adam"), in_results=True),
    S("l2_attention", float, "train", AFM_ONLY, {"default": 0.0, "frappe": 16.0, "movielens": 2.0},
      "lambda, the L2 penalty on the attention weights W, on the authors' scale", low=0, in_results=True),
    S("patience", int, "train", BOTH, {"default": 5},
      "stop after this many epochs without a better validation RMSE (0: never stop early)", low=0),
    S("seed", int, "train", BOTH, {"default": 0}, "random seed of initialisation, order and dropout", low=0,
      widget=False),
    S("device", str, "train", BOTH, {"default": "auto"}, "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
      pattern=r"auto|cpu|mps|cuda(:[0-9]+)?", widget=False),
    # start: how an AFM starts from a trained FM (--pretrain)
    S("p_start", str, "start", AFM_ONLY, {"default": "ones"},
      "with --pretrain: start p at ones (the authors'), at the number of pairs, or 'fm': p at the number of "
      "pairs and the attention output h at zero, so every pair weighs 1/pairs and AFM starts as exactly the FM",
      choices=("ones", "pairs", "fm"), in_results=True, widget=False),
    S("freeze_fm", bool, "start", AFM_ONLY, {"default": False},
      "with --pretrain: FM+A, FM's parameters frozen and only attention and p trained", switched=True,
      widget=False),
)
del S
BY_NAME = {s.name: s for s in SETTINGS}
RESULTS_SETTINGS = tuple(s.name for s in SETTINGS if s.in_results)

# --quick: the same protocol at a size that runs in minutes on a 2-core CPU (tests, demos, studies).
QUICK = {
    "frappe": dict(embed_dim=64, attention_factor=64, epochs=6, batch_size=512),
    "movielens": dict(embed_dim=64, epochs=6),
    "default": dict(epochs=10),
}


def preset_name(dataset_name: str) -> str:
    return dataset_name if dataset_name in PRESET_NAMES else "default"


def applies(name: str, kind: str) -> bool:
    return kind in BY_NAME[name].models


def default(name: str, kind: str = "afm"):
    """The default for data without a preset of its own (also the configs' defaults)."""
    return BY_NAME[name].preset("default", kind)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise AFMError(f"unknown model kind {kind!r}; expected 'fm' or 'afm'")
    return kind


def hyperparameters(dataset_name: str, kind: str, overrides: dict | None = None) -> dict:
    """Every setting of `kind` at its preset for this data, with each non-None override applied and
    checked. An unknown name is an error; a setting of the other model kind is ignored, so one dict of
    overrides can serve FM and AFM."""
    check_kind(kind)
    unknown = sorted(set(overrides or {}) - set(BY_NAME))
    if unknown:
        raise AFMError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(BY_NAME)}")
    preset = preset_name(dataset_name)
    params = {s.name: s.preset(preset, kind) for s in SETTINGS if kind in s.models}
    for name, value in (overrides or {}).items():
        if value is not None and name in params:
            params[name] = BY_NAME[name].check(value)
    return params


USER_SOURCES = ("csv", "libfm")  # a user's own files; the presets keep the paper's squared loss


def default_loss(source_kind: str, task: str) -> str:
    """A user's two-valued target trains as the CTR field does (logistic); everything else as the paper."""
    return "logistic" if task == "binary" and source_kind in USER_SOURCES else default("loss")


def quick_overrides(dataset_name: str) -> dict:
    return dict(QUICK[preset_name(dataset_name)])


def part(params: dict, which: str) -> dict:
    """The settings of one part ("model", "train" or "start") of a run's params."""
    return {k: v for k, v in params.items() if BY_NAME[k].part == which}


def add_flags(parser, names, title: str | None = None) -> None:
    """argparse flags for these settings, with no default (None: take the preset's)."""
    group = parser.add_argument_group(title) if title else parser
    for name in names:
        s = BY_NAME[name]
        only = "" if s.models == BOTH else " (AFM)"
        if s.type is bool:
            group.add_argument(s.cli_flag, dest=name, action="store_const", const=s.switched, help=s.help + only)
        else:
            group.add_argument(s.cli_flag, dest=name, type=s.type, choices=s.choices or None, help=s.help + only)


def from_args(args, names) -> dict:
    return {name: getattr(args, name, None) for name in names}


def widgets(kind: str) -> list[Setting]:
    """The settings the Train page offers for a model kind, in table order."""
    return [s for s in SETTINGS if s.widget and kind in s.models]
