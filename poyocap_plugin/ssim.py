"""The SSIM window shared by the SSIM loss term and the movie SSIM metric."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

__all__ = ["SSIMWindow"]


@dataclass(frozen=True)
class SSIMWindow:
    r"""A Gaussian SSIM window and its constants, validated once.

    Args:
        kernel_size: side of the Gaussian window (pixels, odd); frames must be at least
            this large.
        sigma: standard deviation of the Gaussian window (pixels).
        k1: :math:`K_1`, with :math:`C_1 = (K_1 L)^2` for data range :math:`L`.
        k2: :math:`K_2`, with :math:`C_2 = (K_2 L)^2`.
    """

    kernel_size: int = 11
    sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03

    def __post_init__(self) -> None:
        size = self.kernel_size
        if not (isinstance(size, int) and size > 0 and size % 2 == 1):
            raise ValueError(f"ssim kernel_size must be a positive odd integer; got {size!r}")
        for key in ("sigma", "k1", "k2"):
            value = getattr(self, key)
            if not value > 0:
                raise ValueError(f"ssim {key} must be > 0; got {value!r}")

    def check_frame_size(self, height: int, width: int, *, name: str) -> None:
        """Raise ValueError, naming ``name``, if frames of this size (pixels) are too small."""
        if min(height, width) < self.kernel_size:
            raise ValueError(
                f"{name} needs frames of at least kernel_size={self.kernel_size} pixels a "
                f"side; got {height}x{width}. Use larger frames or a smaller kernel_size."
            )

    def per_frame(
        self, preds: torch.Tensor, target: torch.Tensor, *, data_range: float, name: str
    ) -> torch.Tensor:
        r"""SSIM of each frame pair, of shape :math:`(N,)`, for frames :math:`(N, H, W)`.

        Raises:
            ValueError: naming ``name`` if the frames are smaller than the window.
        """
        self.check_frame_size(*preds.shape[1:], name=name)
        return structural_similarity_index_measure(
            preds[:, None],
            target[:, None],
            gaussian_kernel=True,
            sigma=self.sigma,
            kernel_size=self.kernel_size,
            reduction="none",
            data_range=data_range,
            k1=self.k1,
            k2=self.k2,
        )

    def __str__(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, k1={self.k1}, k2={self.k2}"
