"""Every setting of a training run, one line each: its type, which part of a run it configures, its
default, its bounds and its help text. The command-line flags, the Train page's widgets, the configs and
the results tables are all built from this table, so a new setting is one new line here.

Which settings a model family takes, and its values for the paper's datasets, are declared by the family
(afm.models); the settings a dataset trains with by default (the paper's embedding size, batch and
optimizer for Frappe and MovieLens) by its source (afm.data). A run's values: this table's default, then
the source's, then the family's, then what the user gave (`afm.models.families.hyperparameters`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from afm.core.errors import AFMError


@dataclass(frozen=True)
class Setting:
    name: str
    type: type  # int, float, str or bool
    part: str  # "model" (ModelConfig), "train" (TrainConfig) or "start" (how a model starts from another)
    default: object  # for data and families that set no value of their own
    help: str
    low: float | None = None  # smallest allowed value
    below: float | None = None  # values must be smaller than this
    choices: tuple = ()
    pattern: str | None = None  # a regular expression a string value must match, where choices are too few
    flag: str | None = None  # the CLI flag; None: --name-with-dashes. Bools: a switch that sets `switched`
    switched: object = None
    in_results: bool = False  # shown in the results files' settings tables
    widget: bool = True  # on the Train page

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
    S("embed_dim", int, "model", 16, "k, the size of each feature's embedding (paper: 256)", low=1, in_results=True),
    S("attention_factor", int, "model", 16, "t, the attention network's hidden size (paper: 256 Frappe, 8 MovieLens)",
      low=1, in_results=True),
    S("dropout", float, "model", 0.0, "dropout on the pooled interaction vector (FM, AFM) or after each hidden layer "
      "(the MLP families)", low=0, below=1, in_results=True),
    S("hidden_layers", str, "model", "400,400,400",
      "the MLP's hidden layer sizes, comma-separated (DeepFM's paper: 400,400,400); empty: no MLP where the family "
      "allows it", pattern=r"([1-9][0-9]{0,4}(,[1-9][0-9]{0,4}){0,7})?", in_results=True),
    S("batch_norm", bool, "model", False, "batch normalisation after each hidden layer (and, in NFM, on the "
      "bi-interaction vector, as its paper does)", flag="--batch-norm", switched=True),
    S("cross_layers", int, "model", 3, "DCN-v2: cross layers x0 * (W x + b) + x, each W a full matrix", low=1, below=17,
      in_results=True),
    S("cross_structure", str, "model", "parallel", "DCN-v2: the cross network beside the MLP (parallel) or feeding it "
      "(stacked)", choices=("parallel", "stacked")),
    S("attention_layers", int, "model", 3, "AutoInt: interacting (self-attention) layers over the fields", low=1,
      below=9, in_results=True),
    S("attention_heads", int, "model", 2, "AutoInt: attention heads per layer", low=1, below=17, in_results=True),
    S("head_size", int, "model", 16, "AutoInt: the size of each head's query, key and value", low=1, below=1025),
    S("attention_dropout", float, "model", 0.0, "dropout on the attention weights (the authors used none)",
      low=0, below=1),
    S("attention", bool, "model", True, "AFM ablation: fix every attention weight a_ij to 1/pairs",
      flag="--uniform-attention", switched=False, widget=False),
    S("learn_p", bool, "model", True, "AFM ablation: fix the projection p to ones, as FM", flag="--fixed-p",
      switched=False, widget=False),
    S("loss", str, "model", "squared",
      "squared (the paper's, on -1/+1 targets) or logistic (sigmoid and binary cross-entropy, the CTR field's: "
      "the output is a logit, metrics add AUC and logloss); a user's two-valued target defaults to logistic",
      choices=("squared", "logistic"), in_results=True),
    # train: TrainConfig
    S("epochs", int, "train", 30, "passes over the training split; the best epoch by validation RMSE is kept", low=0),
    S("batch_size", int, "train", 256, "instances per gradient step (paper: 128 Frappe, 4096 MovieLens)", low=1,
      in_results=True),
    S("lr", float, "train", 0.01, "learning rate of the optimizer", low=1e-12, in_results=True),
    S("optimizer", str, "train", "adam", "the optimizer (the paper: Adagrad)", choices=("adagrad", "adam"),
      in_results=True),
    S("l2_attention", float, "train", 0.0, "lambda, the L2 penalty on the attention weights W, on the authors' scale",
      low=0, in_results=True),
    S("patience", int, "train", 5, "stop after this many epochs without a better validation RMSE (0: never stop early)",
      low=0),
    S("seed", int, "train", 0, "random seed of initialisation, order and dropout", low=0, widget=False),
    S("device", str, "train", "auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
      pattern=r"auto|cpu|mps|cuda(:[0-9]+)?", widget=False),
    S("threads", int, "train", 0, "CPU threads for training; 0: chosen when the run starts, one for small work, else "
      "the cores other processes leave idle (the choice and its reason go to model.json)", low=0, widget=False),
    # start: how a model starts from a trained one of the family it can start from (--pretrain)
    S("p_start", str, "start", "ones",
      "with --pretrain: start p at ones (the authors'), at the number of pairs, or 'fm': p at the number of "
      "pairs and the attention output h at zero, so every pair weighs 1/pairs and AFM starts as exactly the FM",
      choices=("ones", "pairs", "fm"), in_results=True, widget=False),
    S("freeze_fm", bool, "start", False,
      "with --pretrain: FM+A, FM's parameters frozen and only attention and p trained", switched=True, widget=False),
)
del S
BY_NAME = {s.name: s for s in SETTINGS}
RESULTS_SETTINGS = tuple(s.name for s in SETTINGS if s.in_results)
# Every family takes these: how it is trained and on what loss. A family declares the rest it takes.
COMMON = ("loss", "epochs", "batch_size", "lr", "optimizer", "patience", "seed", "device", "threads")


def default(name: str):
    """The default for data and families without a value of their own (also the configs' defaults)."""
    return BY_NAME[name].default


def check_names(names) -> None:
    """An unknown setting name is an error that lists the known ones."""
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise AFMError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(BY_NAME)}")


def part(params: dict, which: str) -> dict:
    """The settings of one part ("model", "train" or "start") of a run's params."""
    return {k: v for k, v in params.items() if BY_NAME[k].part == which}
