"""models: the model families, one file each (fm.py, afm.py, lr.py; deepfm.py, dcn.py, autoint.py,
nfm.py) composing the shared layers (layers.py: the additive families'; blocks.py: MLP, cross network,
self-attention), the family registry (families.py), what a model is (config.py) and inference (predict,
evaluate). A new family is one file, one name in the line below, and its settings rows (afm.core.settings).

May import: afm.core, afm.fast, afm.data.
"""
from afm.models import afm, autoint, dcn, deepfm, fm, lr, nfm
from afm.models.config import ModelConfig, Parts
from afm.models.families import FAMILIES, Family, family, register

register(fm.FAMILY, afm.FAMILY, lr.FAMILY, deepfm.FAMILY, dcn.FAMILY, autoint.FAMILY, nfm.FAMILY)

FM, AFM, LR = fm.FM, afm.AFM, lr.AdditiveModel
# The paper's two families by name: for the code that runs the paper's protocol (FM, then AFM from it) and
# for the FM vs AFM default of the app's comparisons.
FM_KIND, AFM_KIND, LR_KIND = fm.FAMILY.name, afm.FAMILY.name, lr.FAMILY.name


def build_model(config: ModelConfig):
    """The model of `config`'s family, freshly initialised."""
    return config.family.model(config)


__all__ = ["AFM", "AFM_KIND", "FAMILIES", "FM", "FM_KIND", "LR_KIND", "Family", "LR", "ModelConfig", "Parts", "build_model", "family", "register"]
