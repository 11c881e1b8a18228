"""Stage-2 image terms on movie frames: pixel L1, focal L1, FFT magnitude L1, SSIM.

Each follows torch_brain's ``Loss`` contract, ``(input, target, weights=None) -> scalar``,
on grey levels in [0, 255], and validates shapes before computing.
"""

from __future__ import annotations

import math

import torch
from torch_brain.nn.loss import Loss

from poyocap_plugin.frame_layout import check_frame_size, unflatten_frames
from poyocap_plugin.ssim import SSIMWindow

__all__ = [
    "FFTMagnitudeL1Loss",
    "FocalL1Loss",
    "FrameLoss",
    "PixelL1Loss",
    "SSIMLoss",
    "weighted_mean",
]

_PIXEL_MAX = 255.0  # grey levels of an 8-bit frame; every image term works on pixels / 255
_FOCAL_EPS = 1e-8  # floor of the per-image maximum error in FocalL1Loss


def weighted_mean(per_image: torch.Tensor, weights: torch.Tensor | float | None) -> torch.Tensor:
    """Mean of per-image losses, weighted as torch_brain's losses weight their rows."""
    if weights is None:
        return per_image.mean()
    if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has no weights
        return per_image.mean() * weights
    return (weights * per_image).sum() / weights.sum()


class FrameLoss(Loss):
    r"""Base of the image terms: validates shapes, scales to [0, 1], weights per image.

    Subclasses implement ``per_image(input, target)`` on images in [0, 1] of shape
    :math:`(N, H, W)`, returning a loss of shape :math:`(N,)`.

    Args:
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def __init__(self, *, height: int, width: int):
        super().__init__()
        check_frame_size(height=height, width=width, owner=type(self).__name__)
        self.height, self.width = height, width

    def unit_images(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Check shapes and return (input, target) as float32 images in [0, 1].

        Args:
            input: predicted grey levels in [0, 255], of shape :math:`(N, H, W)` or
                flattened :math:`(N, H \cdot W)`, :math:`H \times W` = ``height`` x ``width``.
            target: true grey levels in [0, 255] (float or uint8), of either shape.
            weights: per-image weights of shape :math:`(N,)`, a float, or None.

        Returns:
            Two float32 tensors of shape :math:`(N, H, W)`, divided by 255.

        Raises:
            ValueError: on frames of another size than ``height`` x ``width``, or
                mismatched batch sizes or weights.
        """
        name = type(self).__name__
        size = {"height": self.height, "width": self.width}
        input = unflatten_frames(input, **size, name=f"{name} input")
        target = unflatten_frames(target, **size, name=f"{name} target")
        if input.shape[0] != target.shape[0]:
            raise ValueError(
                f"{name}: input and target must have the same batch size; got "
                f"{input.shape[0]} and {target.shape[0]}"
            )
        if torch.is_tensor(weights) and (weights.ndim != 1 or weights.shape[0] != input.shape[0]):
            raise ValueError(
                f"{name}: weights must have shape ({input.shape[0]},); got {tuple(weights.shape)}"
            )
        return input.float() / _PIXEL_MAX, target.float() / _PIXEL_MAX

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        r"""Weighted mean over frames of :meth:`per_image`.

        Args:
            input: predicted grey levels in [0, 255], of shape :math:`(N, H, W)` or
                flattened :math:`(N, H \cdot W)`.
            target: true grey levels in [0, 255] (float or uint8), shaped like ``input``.
            weights: per-frame weights of shape :math:`(N,)` (the mean is
                :math:`\sum_i w_i l_i / \sum_i w_i`), a float multiplying the plain mean,
                or None for the plain mean.

        Returns:
            A scalar.
        """
        input, target = self.unit_images(input, target, weights)
        return weighted_mean(self.per_image(input, target), weights)

    def extra_repr(self) -> str:
        return f"height={self.height}, width={self.width}"


class PixelL1Loss(FrameLoss):
    r"""Mean absolute error between frames, on pixels scaled to [0, 1].

    :math:`l_i = \frac{1}{HW} \sum_{y,x} |\hat{I}_i(y,x) - I_i(y,x)|` with
    :math:`I = \text{grey level} / 255`. The "L1" term of POYO-CAP's finetuning loss.

    Args:
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (input - target).abs().mean(dim=(1, 2))


class FocalL1Loss(FrameLoss):
    r"""Focal-weighted L1: absolute errors weighted by their size relative to the worst pixel.

    With :math:`e = |\hat{I}_i - I_i|` on pixels scaled to [0, 1] and
    :math:`m_i = \max_{y,x} e`,
    :math:`l_i = \frac{1}{HW} \sum_{y,x} \alpha\, (e / m_i)^{\gamma}\, e`. Large errors
    count more than in plain L1 (quadratically for :math:`\gamma = 1`); :math:`\gamma = 0`
    gives :math:`\alpha` x L1. The "Focal" term of POYO-CAP's finetuning loss.

    .. note::
        The released code defines this loss (with the maximum over the whole batch) but
        never uses it; its "focal_loss" entry is an SSIM term. We use the definition, with
        the maximum taken per image (so one frame's weight does not depend on the others in
        its batch) and treated as a constant (no gradient through the maximum), floored at
        1e-8 so that identical images give 0.

    Args:
        alpha: overall scale :math:`\alpha` (> 0).
        gamma: focusing exponent :math:`\gamma` (>= 0).
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        alpha: float = 1.0,
        gamma: float = 1.0,
    ):
        super().__init__(height=height, width=width)
        if not alpha > 0:
            raise ValueError(f"focal alpha must be > 0; got {alpha!r}")
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0; got {gamma!r}")
        self.alpha, self.gamma = alpha, gamma

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        error = (input - target).abs()
        worst = error.detach().amax(dim=(1, 2), keepdim=True).clamp_min(_FOCAL_EPS)
        # e^(gamma+1) / m^gamma: the same value as (e/m)^gamma * e, with a finite gradient
        # at e = 0 for every gamma >= 0.
        focal = error.pow(self.gamma + 1.0) / worst.pow(self.gamma)
        return (self.alpha * focal).mean(dim=(1, 2))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, {super().extra_repr()}"


class FFTMagnitudeL1Loss(FrameLoss):
    r"""L1 distance between the 2-D Fourier magnitudes of two frames, high frequencies weighted.

    On pixels scaled to [0, 1], with the orthonormal 2-D DFT :math:`F` (so magnitudes are
    on the pixels' scale, by Parseval) and the radial frequency
    :math:`\rho(u, v) = \sqrt{f_u^2 + f_v^2}` in cycles per pixel
    (:math:`f_u, f_v \in [-\tfrac12, \tfrac12)`, DC at 0):

    .. math::
        l_i = \frac{1}{HW} \sum_{u,v} \Big(1 + \beta \frac{\rho(u,v)}{\rho_{\max}}\Big)
              \big|\,|F\hat{I}_i(u,v)| - |FI_i(u,v)|\,\big|

    The weight grows from 1 at DC to :math:`1 + \beta` at the highest frequency
    (:math:`\rho_{\max} = \sqrt{1/2}`, the corner), so the term penalises missing fine
    detail (edges, texture) more than a wrong mean brightness. Magnitudes ignore phase: a
    circularly shifted frame scores 0. The "FFT" term of POYO-CAP's finetuning loss.

    .. note::
        The released code meant to weight high frequencies (weight :math:`1 + 2d/d_{\max}`,
        :math:`d` the distance from index :math:`(H/2, W/2)`) but builds the map on the
        unshifted spectrum, where :math:`(H/2, W/2)` is the Nyquist corner: it weights DC
        by 3 and the highest frequency by 1, the reverse. We measure :math:`\rho` from DC
        with ``fftfreq``, which needs no shift; :math:`\beta = 2` is the intended map.

    Args:
        high_frequency_weight: :math:`\beta` (>= 0); 0 gives a plain L1 between magnitudes.
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        high_frequency_weight: float = 2.0,
    ):
        super().__init__(height=height, width=width)
        if not high_frequency_weight >= 0:
            raise ValueError(
                f"fft high_frequency_weight must be >= 0; got {high_frequency_weight!r}"
            )
        self.high_frequency_weight = high_frequency_weight

    def frequency_weights(
        self, height: int, width: int, *, device: torch.device | None = None
    ) -> torch.Tensor:
        r"""The weight map :math:`1 + \beta \rho / \rho_{\max}` of shape :math:`(H, W)`.

        Laid out like ``torch.fft.fft2``'s output: DC at index (0, 0).
        """
        f_y = torch.fft.fftfreq(height, device=device)
        f_x = torch.fft.fftfreq(width, device=device)
        radius = torch.sqrt(f_y[:, None] ** 2 + f_x[None, :] ** 2)
        return 1.0 + self.high_frequency_weight * radius / math.sqrt(0.5)

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.frequency_weights(*input.shape[1:], device=input.device)
        input_magnitude = torch.fft.fft2(input, norm="ortho").abs()
        target_magnitude = torch.fft.fft2(target, norm="ortho").abs()
        return (weight * (input_magnitude - target_magnitude).abs()).mean(dim=(1, 2))

    def extra_repr(self) -> str:
        return f"high_frequency_weight={self.high_frequency_weight}, {super().extra_repr()}"


class SSIMLoss(FrameLoss):
    r"""One minus the structural similarity (SSIM) of two frames.

    :math:`l_i = 1 - \text{SSIM}(\hat{I}_i, I_i)` on pixels scaled to [0, 1], computed by
    ``torchmetrics.functional.structural_similarity_index_measure`` per image with a fixed
    ``data_range=1`` and a Gaussian window. The "SSIM" term of POYO-CAP's finetuning loss.

    .. note::
        The released code uses torchmetrics' defaults, whose ``data_range=None`` infers the
        range from each batch (so the constants :math:`C_1, C_2` change from batch to
        batch); we fix it.

    Args:
        kernel_size: side of the Gaussian window (pixels, odd); frames must be at least
            this large.
        sigma: standard deviation of the Gaussian window (pixels).
        k1: the constant :math:`K_1` of :math:`C_1 = (K_1 L)^2`.
        k2: the constant :math:`K_2` of :math:`C_2 = (K_2 L)^2`.
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
    ):
        super().__init__(height=height, width=width)
        self.window = SSIMWindow(kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)
        self.window.check_frame_size(height, width, name=type(self).__name__)

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.window.per_frame(input, target, data_range=1.0, name="SSIMLoss")

    def extra_repr(self) -> str:
        return f"{self.window}, {super().extra_repr()}"
