"""Dataset sources. Importing this package registers every source."""

from . import folder, idx, medmnist  # noqa: F401  (register their datasets)
from .base import DATASETS, DatasetSource, ImageData, resolve_data_root
from .split import Split, make_split


def dataset_source(name: str) -> DatasetSource:
    """A registered source, or a generic image folder named ``folder:PATH[@SIZE]``."""
    if name.startswith("folder:"):
        return folder.generic_folder_source(name)
    return DATASETS.get(name)


def is_known_dataset(name: str) -> bool:
    return name in DATASETS or name.startswith("folder:")


__all__ = ["DATASETS", "ImageData", "Split", "dataset_source", "is_known_dataset", "make_split", "resolve_data_root"]
