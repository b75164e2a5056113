"""Options every residual family shares: attention on the branch, stochastic depth.

References:
    - [Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
      (Hu et al., CVPR 2018), Fig. 3: the gate on the residual branch, before the sum
    - [CBAM: Convolutional Block Attention Module](https://arxiv.org/abs/1807.06521)
      (Woo et al., ECCV 2018), Fig. 3: likewise
    - [Non-local Neural Networks](https://arxiv.org/abs/1711.07971)
      (Wang et al., CVPR 2018), Section 4.1: one block in res4
    - [Deep Networks with Stochastic Depth](https://arxiv.org/abs/1603.09382)
      (Huang et al., ECCV 2016), Eq. 4: the linear decay rule
"""

from __future__ import annotations

import keras

from visionkit.models.layers.cbam import CBAM
from visionkit.models.layers.non_local import NonLocalBlock
from visionkit.models.layers.squeeze_excitation import SqueezeExcitation
from visionkit.models.layers.stochastic_depth import StochasticDepth

__all__ = ["ATTENTIONS", "branch_attention", "check_attention", "check_stochastic_depth",
           "merge_branch", "non_local_after", "survival_probabilities"]

# "se" and "cbam" gate every residual branch; "non_local" adds one NonLocalBlock after
# the last block of stage 4 (conv4_x).
ATTENTIONS = (None, "se", "cbam", "non_local")
# Reduction ratio r of SE and CBAM (both papers' default).
ATTENTION_RATIO = 16
NON_LOCAL_STAGE = 4


def check_attention(attention: str | None) -> str | None:
    """Validates an `attention=` option."""
    if attention not in ATTENTIONS:
        raise ValueError(f"Expected attention to be one of {ATTENTIONS}; received "
                         f"attention={attention!r}.")
    return attention


def check_stochastic_depth(stochastic_depth: float) -> float:
    """Validates `stochastic_depth`: the last block's drop probability, in 0..1."""
    if not isinstance(stochastic_depth, int | float) or not 0.0 <= stochastic_depth < 1.0:
        raise ValueError(f"Expected stochastic_depth (the last block's drop probability, "
                         f"1 - p_L) in [0, 1); received stochastic_depth={stochastic_depth!r}.")
    return float(stochastic_depth)


def survival_probabilities(blocks: int, stochastic_depth: float) -> list[float]:
    """p_l = 1 - l / L * (1 - p_L) for blocks l = 1..L (Huang et al. 2016, Eq. 4).

    Example:

    >>> survival_probabilities(4, 0.5)
    [0.875, 0.75, 0.625, 0.5]
    """
    return [1.0 - (index + 1) / blocks * stochastic_depth for index in range(blocks)]


def branch_attention(x: keras.KerasTensor, attention: str | None, name: str
                     ) -> keras.KerasTensor:
    """Applies SE or CBAM to a residual branch (identity for None and "non_local")."""
    if attention == "se":
        return SqueezeExcitation(ATTENTION_RATIO, name=f"{name}_se")(x)
    if attention == "cbam":
        return CBAM(ATTENTION_RATIO, name=f"{name}_cbam")(x)
    return x


def non_local_after(x: keras.KerasTensor, attention: str | None, stage: int
                    ) -> keras.KerasTensor:
    """Adds the non-local block after stage 4 when `attention == "non_local"`."""
    if attention == "non_local" and stage == NON_LOCAL_STAGE:
        return NonLocalBlock(name=f"conv{stage}_non_local")(x)
    return x


def merge_branch(shortcut: keras.KerasTensor, branch: keras.KerasTensor, survival: float,
                 name: str) -> keras.KerasTensor:
    """`shortcut + branch`: an Add layer, or StochasticDepth when survival < 1."""
    if survival < 1.0:
        return StochasticDepth(survival, name=name)([shortcut, branch])
    return keras.layers.Add(name=name)([shortcut, branch])
