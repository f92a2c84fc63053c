"""AFM Explorer: FM and AFM (Xiao et al., IJCAI 2017) models, data, training and explanations."""
from afm.errors import AFMError, CheckpointError, DataError
from afm.models import AFM, FM, ModelConfig, Parts, build_model

__version__ = "0.1.0"
__all__ = ["AFM", "FM", "ModelConfig", "Parts", "build_model", "AFMError", "CheckpointError", "DataError",
           "__version__"]
