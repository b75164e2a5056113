"""Serializable layers, one per file, registered under the "visionkit" package."""

from visionkit.models.layers.attention_gate import AttentionGate
from visionkit.models.layers.cbam import CBAM
from visionkit.models.layers.coord_conv import CoordConv2D
from visionkit.models.layers.crop_to_reference import CropToReference
from visionkit.models.layers.euclidean_distance import EuclideanDistance
from visionkit.models.layers.local_response_normalization import LocalResponseNormalization
from visionkit.models.layers.max_unpooling import MaxUnpooling2D
from visionkit.models.layers.non_local import NonLocalBlock
from visionkit.models.layers.pad_to_multiple import PadToMultiple
from visionkit.models.layers.spatial_transformer import SpatialTransformer
from visionkit.models.layers.squeeze_excitation import SqueezeExcitation
from visionkit.models.layers.stochastic_depth import StochasticDepth

__all__ = ["AttentionGate", "CBAM", "CoordConv2D", "CropToReference",
           "EuclideanDistance",
           "LocalResponseNormalization", "MaxUnpooling2D", "NonLocalBlock", "PadToMultiple",
           "SpatialTransformer", "SqueezeExcitation", "StochasticDepth"]
