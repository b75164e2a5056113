"""Naive NumPy versions of the layers' maths, written from the papers' equations."""

from __future__ import annotations

import numpy as np


def conv2d_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None
                ) -> np.ndarray:
    """Stride-1 "same" convolution (odd kernel) by explicit loops over the kernel.

    x `[B, H, W, C]`, kernel `[k, k, C, F]` -> `[B, H, W, F]`.
    """
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += padded[:, i:i + height, j:j + width, :] @ kernel[i, j]
    return out + (0.0 if bias is None else bias)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def resize_bilinear_half_pixel(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (TensorFlow 2's convention)."""
    def weights(out_size, in_size):
        scale = in_size / out_size
        source = np.clip((np.arange(out_size) + 0.5) * scale - 0.5, 0, in_size - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, source - low

    r0, r1, rw = weights(height, x.shape[1])
    c0, c1, cw = weights(width, x.shape[2])
    top = x[:, r0][:, :, c0] * (1 - cw)[None, None, :, None] + \
        x[:, r0][:, :, c1] * cw[None, None, :, None]
    bottom = x[:, r1][:, :, c0] * (1 - cw)[None, None, :, None] + \
        x[:, r1][:, :, c1] * cw[None, None, :, None]
    return top * (1 - rw)[None, :, None, None] + bottom * rw[None, :, None, None]


def bilinear_sample_eq5(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """Jaderberg et al. Eq. 5, literally: a sum over every input pixel, [H, W, C] -> [C]."""
    height, width = image.shape[:2]
    rows = np.maximum(0.0, 1.0 - np.abs(y - np.arange(height)))
    columns = np.maximum(0.0, 1.0 - np.abs(x - np.arange(width)))
    return np.einsum("n,m,nmc->c", rows, columns, image.astype(np.float64))
