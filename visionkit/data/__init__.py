"""Data sources and tf.data pipelines.

Every source returns a `Data` set whose `.train` and `.val` are batched
`(images, targets)` datasets in the batch vocabulary of DESIGN.md.
"""

from visionkit.data.arrays import from_arrays
from visionkit.data.augment import PRESETS
from visionkit.data.check import check
from visionkit.data.class_balanced import class_balanced
from visionkit.data.coco import coco
from visionkit.data.embedded import digits, shapes
from visionkit.data.folder import image_folder
from visionkit.data.masks import mask_folder
from visionkit.data.multilabel import multilabel_csv, multilabel_from_lists
from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, load_images
from visionkit.data.profile import profile
from visionkit.data.voc import voc
from visionkit.data.yolo import yolo

__all__ = ["Data", "PRESETS", "Preprocessing", "check", "class_balanced", "coco", "digits", "from_arrays",
           "image_folder", "load_images", "mask_folder", "multilabel_csv",
           "multilabel_from_lists", "profile", "shapes", "voc", "yolo"]
