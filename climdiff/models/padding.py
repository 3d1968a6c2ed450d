"""Boundary conditions for convolutions, chosen by the kind of grid.

Every convolution of climdiff's networks pads explicitly, then convolves with ``padding=0``.
Zero padding (PyTorch's default) would tell the network where the domain edges are; our domains
have no edges, so the padding reproduces each grid's own neighbours instead:

``"periodic"``
    Doubly periodic square (the turbulence case): circular in both axes. A convolution padded so
    is exactly a circular convolution and commutes with any periodic shift.
``"latlon"``
    Regular latitude-longitude grid, latitude along dim -2 and longitude along dim -1. Circular in
    longitude. Across a pole, the neighbour of the row k steps inside the pole is the same
    latitude row on the other side of the pole, i.e. that row shifted by 180 degrees in longitude.
    This assumes cell-centred latitudes (no row sits exactly on a pole, e.g. ERA5 regridded to
    180 x 360 at 89.5, 88.5, ...) and an even number of longitudes. The padded rows are the first
    (last) rows in mirrored order, rolled by half the longitudes.
``"zeros"``
    Zero padding, for limited-area data or comparisons.

Downsampling (2 x 2 average pooling) and upsampling (nearest) need no padding, and they keep
these semantics: a 2 x 2 average of a periodic field is periodic, and on a lat-lon grid a
180-degree shift of W longitudes is a shift by W/2 at every level as long as the coarsest level
still has an even number of longitudes (:func:`check_grid_shape`). A 32 x 64 grid thus fits
three levels (coarsest 8 x 16), 180 x 360 fits three (45 x 90) but not four.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

PaddingKind = Literal["periodic", "latlon", "zeros"]
PADDING_KINDS: tuple[str, ...] = get_args(PaddingKind)


def check_padding_kind(kind: str) -> None:
    """Raise ``ValueError`` for an unknown padding kind (configs come from JSON, so check early)."""
    if kind not in PADDING_KINDS:
        raise ValueError(f"unknown padding kind {kind!r}; expected one of {', '.join(PADDING_KINDS)}")


def check_grid_shape(shape: tuple[int, int], levels: int, kind: str) -> None:
    """Raise ``ValueError`` unless a (H, W) grid fits a network of ``levels`` resolutions padded by
    ``kind``: H and W survive ``levels - 1`` halvings exactly and, on a lat-lon grid, the coarsest
    level keeps an even number of longitudes (the pole padding shifts rows by half of them)."""
    factor = 2 ** (levels - 1)
    h, w = shape
    if h % factor or w % factor:
        raise ValueError(f"grid {h}x{w} is not divisible by {factor} (2**(levels-1)) as this network needs")
    if kind == "latlon" and (w // factor) % 2:
        raise ValueError(
            f"grid {h}x{w} leaves {w // factor} longitudes (odd) at the coarsest of {levels} levels; "
            "lat-lon padding needs an even number there (use fewer levels or another longitude count)"
        )


def pad_latlon_poles(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Add ``pad`` rows beyond each pole: the nearest rows, mirrored and shifted by 180 degrees."""
    n_lat, n_lon = x.shape[-2], x.shape[-1]
    if n_lon % 2:
        raise ValueError(f"lat-lon padding needs an even number of longitudes, got {n_lon}")
    if pad > n_lat:
        raise ValueError(f"cannot pad {pad} rows across a pole of a grid with {n_lat} latitudes")
    half = n_lon // 2
    north = torch.roll(x[..., :pad, :].flip(-2), shifts=half, dims=-1)
    south = torch.roll(x[..., n_lat - pad :, :].flip(-2), shifts=half, dims=-1)
    return torch.cat([north, x, south], dim=-2)


def pad2d(x: torch.Tensor, pad: int, kind: str) -> torch.Tensor:
    """Pad the last two dims of ``x`` by ``pad`` cells on every side, as the grid ``kind`` says."""
    if pad == 0:
        return x
    if kind == "periodic":
        return F.pad(x, (pad, pad, pad, pad), mode="circular")
    if kind == "latlon":
        # Poles first, then wrap longitude over the extended rows so the corners are the
        # longitude-wrapped pole rows: both operations are shifts in longitude and commute.
        return F.pad(pad_latlon_poles(x, pad), (pad, pad, 0, 0), mode="circular")
    if kind == "zeros":
        return F.pad(x, (pad, pad, pad, pad))
    check_padding_kind(kind)
    raise AssertionError("unreachable")  # check_padding_kind raised


class PaddedConv2d(nn.Conv2d):
    """A ``Conv2d`` (odd square kernel, stride 1) that pads by grid kind instead of with zeros.

    It subclasses ``nn.Conv2d`` so that weights keep the usual names and initialisation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding_kind: str = "periodic",
        bias: bool = True,
    ) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"PaddedConv2d needs an odd kernel size, got {kernel_size}")
        check_padding_kind(padding_kind)
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=bias)
        self.padding_kind = padding_kind
        self.pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad2d(x, self.pad, self.padding_kind))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, padding_kind={self.padding_kind!r}"


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Halve the resolution by 2 x 2 averaging (DDPM++'s [1, 1] resampling filter)."""
    return F.avg_pool2d(x, kernel_size=2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Double the resolution by nearest-neighbour repetition (the transpose of ``downsample``, x4)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")
