"""Data sources, all producing one in-memory form: `Dataset`."""
from afm.data.dataset import SPLITS, Dataset, Split
from afm.data.sources import data_dir, dataset_status, load_dataset
from afm.data.synthetic import make_synthetic

__all__ = ["SPLITS", "Dataset", "Split", "data_dir", "dataset_status", "load_dataset", "make_synthetic"]
