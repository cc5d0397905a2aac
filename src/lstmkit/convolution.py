"""Channels-last convolutions in NumPy: strided windows and one matrix product.

A convolution of ``x`` (``(..., *spatial, in_channels)``) with a kernel of shape
``(*kernel_size, in_channels, out_channels)`` (Keras' layout) is computed as

1. pad the spatial axes (``"same"`` or ``"valid"``, see :func:`padding_amounts`);
2. cut every window with :func:`numpy.lib.stride_tricks.sliding_window_view` (a view; dilation
   is a step of the view) and copy the windows into rows of ``prod(kernel_size) * in_channels``
   numbers (:func:`patches`, "im2col");
3. one product of those rows with the kernel reshaped to ``(prod(kernel_size) * in_channels,
   out_channels)``.

Every leading axis (batch, time) is carried along, so one call convolves a whole sequence.
Like Keras and TensorFlow, the kernel is *not* flipped (a cross-correlation), stride is 1,
and ``"same"`` padding puts the odd pixel of an even window at the end.

The gradient with respect to the input (:func:`input_gradient`) is the transpose: one product
of the output gradient with the transposed kernel, then each kernel position adds its share
back into the padded input, and the padding is cut off.

Examples
--------
>>> import numpy as np
>>> from lstmkit.convolution import convolve, padding_amounts
>>> x = np.arange(5.0).reshape(1, 5, 1)          # (batch, width, channels)
>>> kernel = np.ones((3, 1, 1))                  # (width, in, out): a moving sum
>>> convolve(x, kernel, padding_amounts("same", (3,), (1,)), (1,))[0, :, 0].tolist()
[1.0, 3.0, 6.0, 9.0, 7.0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "PADDINGS",
    "convolve",
    "input_gradient",
    "kernel_gradient",
    "output_spatial_shape",
    "padding_amounts",
    "patches",
]

Array = NDArray[Any]
Pads = tuple[tuple[int, int], ...]

#: The input paddings supported: ``"same"`` keeps the spatial shape, ``"valid"`` pads nothing.
PADDINGS = ("same", "valid")


def padding_amounts(padding: str, kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> Pads:
    """``(before, after)`` zeros on each spatial axis for ``padding`` ``"same"`` or ``"valid"``.

    ``"same"`` pads ``dilation * (k - 1)`` in all, the larger half after (as TensorFlow and
    PyTorch do).
    """
    if padding == "valid":
        return tuple((0, 0) for _ in kernel_size)
    totals = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
    return tuple((t // 2, t - t // 2) for t in totals)


def output_spatial_shape(
    spatial: tuple[int, ...], kernel_size: tuple[int, ...], dilation: tuple[int, ...], pads: Pads
) -> tuple[int, ...]:
    """Spatial shape of the output for an input of spatial shape ``spatial``."""
    return tuple(
        n + lo + hi - d * (k - 1)
        for n, k, d, (lo, hi) in zip(spatial, kernel_size, dilation, pads, strict=True)
    )


def patches(x: Array, kernel_size: tuple[int, ...], dilation: tuple[int, ...], pads: Pads) -> Array:
    """The windows of ``x`` as rows: shape ``(..., *out_spatial, prod(kernel_size) * channels)``.

    Row entries are ordered like a kernel ``(*kernel_size, channels, out)`` reshaped to
    ``(-1, out)``: window position first, channel last.
    """
    rank = len(kernel_size)
    lead = x.ndim - rank - 1
    if any(lo or hi for lo, hi in pads):
        x = np.pad(x, [(0, 0)] * lead + list(pads) + [(0, 0)])
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True))
    windows = sliding_window_view(x, span, axis=tuple(range(lead, lead + rank)))
    if any(d > 1 for d in dilation):
        windows = windows[(...,) + tuple(slice(None, None, d) for d in dilation)]
    # (..., *out, channels, *kernel) -> (..., *out, *kernel, channels), then one copy into rows
    windows = np.moveaxis(windows, lead + rank, -1)
    out = windows.shape[: lead + rank]
    return windows.reshape(out + (math.prod(kernel_size) * x.shape[-1],))


def convolve(x: Array, kernel: Array, pads: Pads, dilation: tuple[int, ...]) -> Array:
    """Cross-correlate ``x`` ``(..., *spatial, in)`` with ``kernel`` ``(*k, in, out)``."""
    rank = kernel.ndim - 2
    rows = patches(x, kernel.shape[:rank], dilation, pads)
    return rows @ kernel.reshape(-1, kernel.shape[-1])


def kernel_gradient(rows: Array, dz: Array, kernel_shape: tuple[int, ...]) -> Array:
    """``dL/dkernel`` from the :func:`patches` rows of the forward pass and ``dz = dL/dout``."""
    out = dz.shape[-1]
    return (rows.reshape(-1, rows.shape[-1]).T @ dz.reshape(-1, out)).reshape(kernel_shape)


def input_gradient(dz: Array, kernel: Array, pads: Pads, dilation: tuple[int, ...]) -> Array:
    """``dL/dx`` of :func:`convolve` from ``dz = dL/dout`` (``(..., *out_spatial, out)``).

    The transpose of the forward map: one product gives each output pixel's gradient with
    respect to its window (``dz @ kernel.T``), and each window position adds its part back
    into the (padded) input ("col2im", one strided addition per kernel position); the
    padding is then cut off.
    """
    rank = kernel.ndim - 2
    size, n_in, n_out = kernel.shape[:rank], kernel.shape[-2], kernel.shape[-1]
    lead = dz.ndim - rank - 1
    out = dz.shape[lead : lead + rank]
    d_rows = dz @ kernel.reshape(-1, n_out).T  # (..., *out, prod(k) * in)
    d_rows = d_rows.reshape(dz.shape[:-1] + size + (n_in,))
    padded = tuple(n + d * (k - 1) for n, k, d in zip(out, size, dilation, strict=True))
    dx = np.zeros(dz.shape[:lead] + padded + (n_in,), dz.dtype)
    head = (slice(None),) * lead
    for offset in np.ndindex(*size):
        window = tuple(
            slice(o * d, o * d + n) for o, d, n in zip(offset, dilation, out, strict=True)
        )
        dx[head + window] += d_rows[head + (slice(None),) * rank + offset]
    crop = tuple(slice(lo, n - hi) for n, (lo, hi) in zip(padded, pads, strict=True))
    return dx[head + crop]
