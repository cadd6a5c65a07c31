"""Datasets and data handling for chainrule (numpy only; optional libraries load on demand).

* :mod:`chainrule.data.datasets` - built-in datasets (:func:`load_dataset`, :func:`list_datasets`).
* :mod:`chainrule.data.utils` - splitting, standardizing, one-hot, mini-batches, label codes.
* :mod:`chainrule.data.files` - reading the user's CSV/TSV/npz/parquet files and writing CSV.
"""

from chainrule.data.datasets import DATASET_NAMES, Dataset, list_datasets, load_dataset
from chainrule.data.files import Table, infer_task, prepare, read_table, write_table
from chainrule.data.utils import (
    Standardizer,
    batches,
    encode_labels,
    one_hot,
    standardize,
    train_test_split,
)

__all__ = [
    "Dataset",
    "load_dataset",
    "list_datasets",
    "DATASET_NAMES",
    "train_test_split",
    "Standardizer",
    "standardize",
    "one_hot",
    "batches",
    "encode_labels",
    "read_table",
    "prepare",
    "infer_task",
    "write_table",
    "Table",
]
