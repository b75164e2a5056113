"""Task metrics: segmentation IoU, Dice, pixel accuracy (ignoring 255); detection COCO mAP.

Example:

>>> from visionkit.train.metrics import SegmentationMeanIoU
>>> SegmentationMeanIoU(num_classes=3).name
'mean_iou'
"""

from visionkit.train.detection_metrics import coco_map
from visionkit.train.segmentation_metrics import (
    DiceCoefficient,
    PixelAccuracy,
    SegmentationMeanIoU,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_dice,
    mean_iou,
    pixel_accuracy,
)

__all__ = ["DiceCoefficient", "PixelAccuracy", "SegmentationMeanIoU", "coco_map",
           "confusion_matrix", "dice_per_class", "iou_per_class", "mean_dice", "mean_iou",
           "pixel_accuracy"]
