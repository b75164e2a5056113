"""Four models trained on the embedded data: LiteRT and ONNX exports equal Keras (slow)."""

from __future__ import annotations

import importlib.util
import os

import pytest

import visionkit as vk
from visionkit.export.formats import verification_images

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the export extra) is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime (the export extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the export extra) is not installed")

BENCHMARK = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "export.py")


def _train_models(epochs: int):
    spec = importlib.util.spec_from_file_location("export_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train_models(epochs)


@pytest.mark.slow
def test_four_trained_models_export_with_parity(tmp_path):
    for name, (model, data) in _train_models(epochs=2).items():
        images = verification_images(data, data.image_size, 32)
        for label, export, options in (("litert", vk.export.litert, {}),
                                       ("onnx", vk.export.onnx, {}),
                                       ("litert_f16", vk.export.litert, {"quantize": "float16"}),
                                       ("litert_int8", vk.export.litert, {"quantize": "int8"})):
            path = export(model, tmp_path / f"{name}_{label}", data=data, **options)
            report = vk.export.check(path, model=model, images=images)
            print(name, label, {k: v for k, v in report.items() if k not in ("path",)})
            assert report["passed"], (name, label, report["failures"])
            if label in ("litert", "onnx"):
                if "max_abs_probabilities" in report:
                    assert report["max_abs_probabilities"] <= 1e-4
                if "mask_agreement" in report:
                    assert report["mask_agreement"] >= 0.999
                if "map50" in report:
                    assert report["map50"] >= 0.99
