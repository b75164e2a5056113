"""SavedModel export with serving signatures and metadata; loading exports back.

Example:

>>> import tempfile, numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
...                         filters=(4,))
>>> path = vk.export.saved_model(model, tempfile.mkdtemp(), task="classification",
...                              class_names=["cat", "dog"])
>>> predictor = vk.export.load(path)
>>> int(predictor(np.zeros((16, 16, 3), np.uint8))["class_id"]) in (0, 1)
True
"""

from visionkit.export.check import check
from visionkit.export.exporter import saved_model
from visionkit.export.formats import LiteRTConversionError, litert, onnx
from visionkit.export.loader import Predictor, load
from visionkit.export.metadata import read_metadata
from visionkit.export.predict import format_predictions, predict_files
from visionkit.export.verify import ExportVerificationError
from visionkit.export.versions import list_versions, next_version

__all__ = [
    "saved_model",
    "load",
    "Predictor",
    "predict_files",
    "format_predictions",
    "read_metadata",
    "list_versions",
    "next_version",
    "ExportVerificationError",
    "litert",
    "onnx",
    "check",
    "LiteRTConversionError",
]
