"""The published weights files visionkit knows: names, origins and hashes.

Facts copied from the installed keras.applications sources (Keras 3.15, the package's
`applications/{mobilenet_v2,mobilenet_v3,efficientnet,densenet,resnet}.py`:
`BASE_WEIGHT(S)_PATH`, the no-top file names and `WEIGHTS_HASHES[...][1]` / `file_hash`)
and from keras-cv's YOLOv8 backbone presets that carried `weights_url` / `weights_hash`
(`yolo_v8_backbone_presets.py`, keras-cv 0.6; 0.9 moved them to Kaggle handles without
hashes). `visionkit.models.pretrained` registers these rows at import.
"""

from __future__ import annotations

__all__ = ["builtin_weights"]

_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_KERAS_APPLICATIONS_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"
_KERAS_CV_YOLOV8 = "https://storage.googleapis.com/keras-cv/models/yolov8/coco/"

# MobileNetV2: Keras publishes no hash; one file per (alpha, rows).
_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)
# MobileNetV3 no-top files and their MD5 (WEIGHTS_HASHES[...][1] in mobilenet_v3.py).
_MOBILENET_V3 = {
    ("small", 0.75): "ebdb5cc8e0b497cd13a7c275d475c819",
    ("small", 1.0): "d3e8ec802a04aa4fc771ee12a9a9b836",
    ("large", 0.75): "40af19a13ebea4e2ee0c676887f69a2e",
    ("large", 1.0): "07fb09a5933dd0c8eaafa16978110389",
}
# EfficientNet no-top MD5 (WEIGHTS_HASHES["b0"][1], ["b1"][1] in efficientnet.py).
_EFFICIENTNET = {"b0": "50bc09e76180e00e4465e1a485ddc09d",
                 "b1": "74c4e6b3e1f6a1eea24c589628592432"}
# keras-cv YOLOv8 backbones pretrained on COCO: (file name, SHA-256).
_YOLO_V8_COCO = {
    "yolo_v8_xs": ("yolov8_n_backbone.h5",
                   "636ba3cba064c7c457e30a0e4759716006c305c30876df1c1caf2e56b99eab6c"),
    "yolo_v8_s": ("yolov8_s_backbone.h5",
                  "49ab5da87d6b36a1943e7f111a1960355171332c25312b6cc01526baaecf1b69"),
    "yolo_v8_m": ("yolov8_m_backbone.h5",
                  "a9719807699a2540da14aa7f9a0dda272d400d30c40a956298a63a2805aa6436"),
    "yolo_v8_l": ("yolov8_l_backbone.h5",
                  "2c94ffe75492491974c6d7347d5c1d1aa209d8f6d78c63ab62df0f5dd51680b9"),
    "yolo_v8_xl": ("yolov8_x_backbone.h5",
                   "ce0cc3235eacaffc4a9824e28b2366e674b6d42befc4c7b77f3be7d1d39960bd"),
}


def _row(name: str, backbone: str, dataset: str, file_name: str, origin: str,
         file_hash: str | None, width_multiplier: float = 1.0,
         input_size: int | None = None) -> dict:
    return {"name": name, "backbone": backbone, "dataset": dataset, "file_name": file_name,
            "origin": origin, "file_hash": file_hash, "width_multiplier": width_multiplier,
            "input_size": input_size}


def builtin_weights() -> list[dict]:
    """Rows of `PretrainedWeights` fields, one per published file."""
    table: list[dict] = []
    for alpha in _MOBILENET_V2_ALPHAS:
        for rows in _MOBILENET_V2_ROWS:
            file_name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_"
                         f"{rows}_no_top.h5")
            default = alpha == 1.0 and rows == 224
            table.append(_row(
                "mobilenet_v2_imagenet" if default else
                f"mobilenet_v2_{float(alpha)}_{rows}_imagenet", "mobilenet_v2", "imagenet",
                file_name, _KERAS_APPLICATIONS + "mobilenet_v2/" + file_name, None,
                width_multiplier=alpha, input_size=rows))
    for (size, alpha), md5 in _MOBILENET_V3.items():
        file_name = f"weights_mobilenet_v3_{size}_224_{alpha}_float_no_top_v2.h5"
        table.append(_row(
            f"mobilenet_v3_{size}_imagenet" if alpha == 1.0 else
            f"mobilenet_v3_{size}_{alpha}_imagenet", f"mobilenet_v3_{size}", "imagenet",
            file_name, _KERAS_APPLICATIONS + "mobilenet_v3/" + file_name, md5,
            width_multiplier=alpha, input_size=224))
    for variant, md5 in _EFFICIENTNET.items():
        file_name = f"efficientnet{variant}_notop.h5"
        table.append(_row(
            f"efficientnet_{variant}_imagenet", f"efficientnet_{variant}", "imagenet",
            file_name, _KERAS_APPLICATIONS_EFFICIENTNET + file_name, md5,
            input_size=224 if variant == "b0" else 240))
    densenet = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    table.append(_row(
        "densenet121_imagenet", "densenet121", "imagenet", densenet,
        _KERAS_APPLICATIONS + "densenet/" + densenet, "30ee3e1110167f948a6b9946edeeb738",
        input_size=224))
    resnet = "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    table.append(_row(
        "resnet50_v2_imagenet", "resnet50_v2", "imagenet", resnet,
        _KERAS_APPLICATIONS + "resnet/" + resnet, "fac2f116257151a9d068a22e544a4917",
        input_size=224))
    for backbone, (file_name, sha256) in _YOLO_V8_COCO.items():
        table.append(_row(
            f"{backbone}_coco", backbone, "coco", file_name, _KERAS_CV_YOLOV8 + file_name,
            sha256, input_size=640))
    return table
