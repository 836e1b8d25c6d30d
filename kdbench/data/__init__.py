"""Dataset sources. Importing this package registers every source."""

from . import folder, idx  # noqa: F401  (register their datasets)
from .base import DATASETS, ImageData, resolve_data_root
from .split import Split, make_split

__all__ = ["DATASETS", "ImageData", "Split", "make_split", "resolve_data_root"]
