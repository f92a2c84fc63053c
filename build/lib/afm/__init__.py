"""AFM Explorer: factorization models (FM, AFM and more families), data, training and explanations.

The layers, bottom to top, each a folder that may import only those below it (tests/test_layers.py checks
it with import-linter): core, fast, data, models, store, explain, training, experiments, bench, cli.
"""
from afm.core.errors import AFMError, CheckpointError, DataError
from afm.core.provenance import VERSION as __version__
from afm.models import AFM, FM, ModelConfig, Parts, build_model

__all__ = ["AFM", "FM", "ModelConfig", "Parts", "build_model", "AFMError", "CheckpointError", "DataError",
           "__version__"]
