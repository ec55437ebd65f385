"""Shared nets and normalizers of the learned controllers (DexGen, MoDex)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Normalizer(nn.Module):
    """``(x - mean) / std`` with statistics fixed from data (buffers: saved, not trained).

    The buffers are ``mean`` and ``std`` (float32), the keys of every shipped checkpoint.

    Args:
        dim: the feature width.
        min_std: the smallest std :meth:`fit` keeps (a feature that never varies is not
            blown up); a call may pass its own.
        fit_dtype: the precision :meth:`fit` computes the statistics in (DexGen: float64,
            MoDex: float32, as each was trained).
    """

    def __init__(
        self, dim: int, *, min_std: float = 1e-4, fit_dtype: torch.dtype = torch.float64
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.min_std = min_std
        self.fit_dtype = fit_dtype

    def fit(self, x: np.ndarray | torch.Tensor, min_std: float | None = None) -> Normalizer:
        """Set the statistics from ``x`` (..., dim)."""
        x = torch.as_tensor(np.asarray(x), dtype=self.fit_dtype).reshape(-1, self.mean.numel())
        floor = self.min_std if min_std is None else min_std
        self.mean.copy_(x.mean(0).float())
        self.std.copy_(x.std(0).clamp_min(floor).float())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean
