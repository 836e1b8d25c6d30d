"""kdbench: reproducible knowledge-distillation benchmarks for image classification."""

__version__ = "0.1.0"
