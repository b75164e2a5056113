"""Segmentation builders (each registers itself in the model registry)."""

from visionkit.models.segmentation.deeplab import deeplabv3plus
from visionkit.models.segmentation.segnet import segnet
from visionkit.models.segmentation.unet import unet
from visionkit.models.segmentation.unet_backbone import UNET_BACKBONES, unet_on_backbone

__all__ = ["UNET_BACKBONES", "deeplabv3plus", "segnet", "unet", "unet_on_backbone"]
