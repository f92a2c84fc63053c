"""data: every source of data, all producing one in-memory form, `Dataset` (dataset.py). Each source is
one module declaring a `Source` (source.py); the registry (sources.py) lists them in one line.

May import: afm.core.
"""
from afm.data.dataset import SPLITS, Dataset, Split
from afm.data.sources import data_dir, dataset_status, load_dataset
from afm.data.synthetic import make_synthetic

__all__ = ["SPLITS", "Dataset", "Split", "data_dir", "dataset_status", "load_dataset", "make_synthetic"]
