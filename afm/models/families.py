"""The model-family registry. A family is one file in afm.models that declares a `Family`: its model class,
what it can show (its capabilities), which settings it takes and its values for the paper's datasets.
`afm/models/__init__.py` registers every family in one line. Code asks for a capability ("is it
additive?", "has it attention?"), never for a family's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from afm.core import settings
from afm.core.errors import AFMError
from afm.data.sources import presets as source_presets


@dataclass(frozen=True)
class Family:
    name: str  # recorded in model.json ("kind"), the CLI's --model choice
    label: str  # what people read ("AFM")
    summary: str  # one line for menus and docs
    model: type  # the nn.Module, built from a ModelConfig
    settings: tuple[str, ...] = ()  # what it takes beyond afm.core.settings.COMMON
    presets: dict = field(default_factory=dict)  # dataset name (or "default") -> {setting: value}
    additive: bool = True  # its prediction splits exactly into bias + first order + one term per pair
    pair_terms: bool = True  # part of its prediction is one exact term per pair (FM's, AFM's, DeepFM's FM part)
    pairwise: bool = True  # its pair terms are p^T(v_i * v_j), weighted (pair_products, projection, pair_scores)
    normalised: bool = False  # its pair weights sum to one per instance (attention over pairs)
    attention: bool = False  # it can learn per-instance pair weights (the config may switch them off)
    field_attention: bool = False  # it attends over fields per layer and head (AutoInt): maps to read
    starts_from: str | None = None  # the family whose trained model it can start from (--pretrain)

    def takes(self, name: str) -> bool:
        return name in settings.COMMON or name in self.settings

    @property
    def setting_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in settings.SETTINGS if self.takes(s.name))

    def preset(self, dataset_name: str) -> dict:
        return dict(self.presets.get(dataset_name, self.presets.get("default", {})))


FAMILIES: dict[str, Family] = {}


def register(*families: Family) -> None:
    for family in families:
        FAMILIES[family.name] = family


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise AFMError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def names() -> tuple[str, ...]:
    return tuple(FAMILIES)


def taking(name: str) -> list[Family]:
    """The families that take a setting."""
    return [f for f in FAMILIES.values() if f.takes(name)]


def hyperparameters(dataset_name: str, kind: str, overrides: dict | None = None) -> dict:
    """Every setting of family `kind` for this data: the table's default, the data source's preset, the
    family's preset for this data, then each non-None override, checked. An unknown name is an error; a
    setting the family does not take is ignored, so one dict of overrides can serve several families."""
    chosen = family(kind)
    settings.check_names(overrides or {})
    params = {name: settings.default(name) for name in chosen.setting_names}
    for name, value in {**source_presets(dataset_name), **chosen.preset(dataset_name)}.items():
        if name in params:
            params[name] = value
    for name, value in (overrides or {}).items():
        if value is not None and name in params:
            params[name] = settings.BY_NAME[name].check(value)
    return params


def widgets(kind: str) -> list[settings.Setting]:
    """The settings the Train page offers for a family, in table order."""
    return [s for s in settings.SETTINGS if s.widget and family(kind).takes(s.name)]
