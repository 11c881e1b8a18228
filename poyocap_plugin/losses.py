"""Losses of the POYO-CAP curriculum, following torch_brain's ``Loss`` contract.

torch_brain 0.1.2's ``train.py`` computes each readout's loss as
``spec.loss_fn(output, target, weights)``; every loss here has that signature and
validates its inputs the way ``torch_brain.nn.loss`` does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch_brain.nn.loss import Loss

from poyocap_plugin.frame_layout import NM1_ASPECT_RATIO, check_aspect_ratio, unflatten_frames
from poyocap_plugin.ssim import SSIMWindow

__all__ = [
    "MASKED_LATENT_BLOCKS",
    "MaskedLatentL1Loss",
    "ScaledLoss",
    "PixelL1Loss",
    "FocalL1Loss",
    "FFTMagnitudeL1Loss",
    "SSIMLoss",
    "PerceptualFeatureLoss",
    "CAPFrameLoss",
]

logger = logging.getLogger(__name__)


class ScaledLoss(Loss):
    r"""A readout's loss multiplied by a constant weight.

    torch_brain's losses take the weighted mean over queries (``sum(w * l) / sum(w)``),
    so a constant per-query weight cancels out; a readout's weight in the total loss
    (POYO-CAP's 0.01 on the drifting-gratings cross-entropy in stage 1) must scale the
    loss itself.

    Args:
        loss: the readout's own loss.
        weight: the factor applied to it.
    """

    def __init__(self, *, loss: Loss, weight: float):
        super().__init__()
        if not weight > 0:
            raise ValueError(f"ScaledLoss weight must be > 0; got {weight!r}")
        self.loss = loss
        self.weight = weight

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.weight * self.loss(input, target, weights)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


#: The column blocks of a packed masked-latent row, each :math:`D` wide: the model's
#: reconstruction, its target, and two trivial predictions of that target on the same
#: window (the mean of its unmasked target latents; the last unmasked bin copied forward).
MASKED_LATENT_BLOCKS = ("reconstruction", "target", "window_mean", "copy_forward")


class MaskedLatentL1Loss(Loss):
    r"""L1 distance between reconstructed and reference latents at masked positions.

    The stage-1 objective of POYO-CAP (Bae et al., ICLR 2026): latents hidden behind the
    mask token must be reconstructed by the shared processor. The model can only hand
    ``train.py`` one tensor per readout, so it packs one row per masked latent: the
    blocks of :data:`MASKED_LATENT_BLOCKS`, each :math:`D` wide; the loss reads the first
    two (reconstruction, target), the validation metrics all of them. Rows stay 2-D because
    torch_brain's stitcher, which the validation evaluator runs on every output, pools only
    1-D and 2-D values. Whether the target carries a gradient is the model's choice.

    .. note::
        The paper's loss is L1 on the masked positions. The released code uses MSE over
        all latents; we follow the paper.

    Args (forward):
        input: packed latents of shape :math:`(N, 4D)`, one row per masked latent.
        target: the readout's placeholder target, of shape :math:`(N,)`; only its length
            is used (to check alignment).
        weights: per-row weights of shape :math:`(N,)`, or None for a plain mean.

    Returns:
        The weighted mean over rows of the mean absolute error over :math:`D`.
    """

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        blocks = len(MASKED_LATENT_BLOCKS)
        if input.ndim != 2 or input.shape[1] % blocks:
            raise ValueError(
                f"MaskedLatentL1Loss expects input of shape (N, {blocks}D) packing "
                f"{MASKED_LATENT_BLOCKS}; got {tuple(input.shape)}"
            )
        if target.shape[0] != input.shape[0]:
            raise ValueError(
                f"Input and target must have the same batch size; got {input.shape[0]} "
                f"and {target.shape[0]}"
            )
        reconstruction, reference = input.chunk(blocks, dim=1)[:2]
        per_row = (reconstruction - reference).abs().mean(dim=-1)
        if weights is None:
            return per_row.mean()
        if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has none
            return per_row.mean() * weights
        if weights.ndim != 1 or weights.shape[0] != input.shape[0]:
            raise ValueError(
                f"Weights must have shape ({input.shape[0]},); got {tuple(weights.shape)}"
            )
        return (weights * per_row).sum() / weights.sum()


# --- Stage 2: movie-frame reconstruction ----------------------------------------------

_PIXEL_MAX = 255.0  # grey levels of an 8-bit frame; every image term works on pixels / 255
_FOCAL_EPS = 1e-8  # floor of the per-image maximum error in FocalL1Loss
_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the perceptual network's input normalisation
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PERCEPTUAL_MIN_SIDE_PX = 15  # smallest frame side the perceptual feature stack accepts
_WEIGHT_ARGS = {  # CAPFrameLoss's term names -> its constructor's weight arguments
    "focal_l1": "focal_weight",
    "pixel_l1": "l1_weight",
    "fft_magnitude_l1": "fft_weight",
    "perceptual": "perceptual_weight",
    "ssim": "ssim_weight",
}


def _weighted_mean(per_image: torch.Tensor, weights: torch.Tensor | float | None) -> torch.Tensor:
    """Mean of per-image losses, weighted as torch_brain's losses weight their rows."""
    if weights is None:
        return per_image.mean()
    if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has no weights
        return per_image.mean() * weights
    return (weights * per_image).sum() / weights.sum()


class _FrameLoss(Loss):
    r"""Base of the image terms: validates shapes, scales to [0, 1], weights per image.

    Subclasses implement ``per_image(input, target)`` on images in [0, 1] of shape
    :math:`(N, H, W)`, returning a loss of shape :math:`(N,)`.
    """

    def __init__(self, *, frame_aspect_ratio: float = NM1_ASPECT_RATIO):
        super().__init__()
        check_aspect_ratio(frame_aspect_ratio)
        self.frame_aspect_ratio = frame_aspect_ratio

    def unit_images(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Check shapes and return (input, target) as float32 images in [0, 1].

        Args:
            input: predicted grey levels in [0, 255], of shape :math:`(N, H, W)` or
                flattened :math:`(N, H \cdot W)`.
            target: true grey levels in [0, 255] (float or uint8), shaped like ``input``.
            weights: per-image weights of shape :math:`(N,)`, a float, or None.

        Returns:
            Two float32 tensors of shape :math:`(N, H, W)`, divided by 255.

        Raises:
            ValueError: on mismatched shapes or weights.
        """
        name = type(self).__name__
        input = unflatten_frames(input, aspect_ratio=self.frame_aspect_ratio, name=f"{name} input")
        target = unflatten_frames(
            target, aspect_ratio=self.frame_aspect_ratio, name=f"{name} target"
        )
        if input.shape[0] != target.shape[0]:
            raise ValueError(
                f"{name}: input and target must have the same batch size; got "
                f"{input.shape[0]} and {target.shape[0]}"
            )
        if input.shape != target.shape:
            raise ValueError(
                f"{name}: input and target frames must have the same size; got "
                f"{tuple(input.shape)} and {tuple(target.shape)}"
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
        return _weighted_mean(self.per_image(input, target), weights)

    def extra_repr(self) -> str:
        return f"frame_aspect_ratio={self.frame_aspect_ratio}"


class PixelL1Loss(_FrameLoss):
    r"""Mean absolute error between frames, on pixels scaled to [0, 1].

    :math:`l_i = \frac{1}{HW} \sum_{y,x} |\hat{I}_i(y,x) - I_i(y,x)|` with
    :math:`I = \text{grey level} / 255`. The "L1" term of POYO-CAP's finetuning loss.

    Args:
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.
    """

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (input - target).abs().mean(dim=(1, 2))


class FocalL1Loss(_FrameLoss):
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
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        gamma: float = 1.0,
        frame_aspect_ratio: float = NM1_ASPECT_RATIO,
    ):
        super().__init__(frame_aspect_ratio=frame_aspect_ratio)
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


class FFTMagnitudeL1Loss(_FrameLoss):
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
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.
    """

    def __init__(
        self,
        *,
        high_frequency_weight: float = 2.0,
        frame_aspect_ratio: float = NM1_ASPECT_RATIO,
    ):
        super().__init__(frame_aspect_ratio=frame_aspect_ratio)
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


class SSIMLoss(_FrameLoss):
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
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.
    """

    def __init__(
        self,
        *,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        frame_aspect_ratio: float = NM1_ASPECT_RATIO,
    ):
        super().__init__(frame_aspect_ratio=frame_aspect_ratio)
        self.window = SSIMWindow(kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.window.per_frame(input, target, data_range=1.0, name="SSIMLoss")

    def extra_repr(self) -> str:
        return f"{self.window}, {super().extra_repr()}"


class _AlexNetStem(nn.Module):
    """AlexNet's first two conv layers: conv1 11x11/4, ReLU, max-pool 3/2, conv2 5x5 (no ReLU).

    Submodule indices follow AlexNet's ``features`` so that its state_dict keys
    (``features.0.*``, ``features.3.*``) load as they are.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _load_stem_weights(stem: _AlexNetStem, path: Path) -> None:
    """Load the stem's weights from a state_dict file; other keys in the file are ignored."""
    if not path.is_file():
        raise FileNotFoundError(
            f"perceptual_weights_path {str(path)!r} does not exist; give a local state_dict "
            "of an AlexNet (keys features.0.* and features.3.*), or leave it unset to turn "
            "the perceptual term off"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a non-checkpoint file
        raise ValueError(
            f"perceptual_weights_path {str(path)!r} is not a loadable torch state_dict: {error}"
        ) from error
    if not isinstance(state, Mapping):
        raise ValueError(
            f"perceptual_weights_path {str(path)!r} holds a {type(state).__name__}, not a "
            "state_dict (a mapping of parameter names to tensors)"
        )
    expected = stem.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(
            f"perceptual_weights_path {str(path)!r} lacks the keys {missing}; it must be an "
            "AlexNet state_dict (torchvision's layout: features.0.*, features.3.*)"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"perceptual_weights_path {str(path)!r}: {key} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
            )
    stem.load_state_dict({key: state[key] for key in expected})


class PerceptualFeatureLoss(_FrameLoss):
    r"""Mean squared distance between frozen AlexNet conv2 features of two frames.

    Each frame (pixels scaled to [0, 1]) is repeated to 3 channels, normalised with the
    ImageNet mean and standard deviation, and passed through AlexNet's conv1 (11x11,
    stride 4), ReLU, max-pool (3, stride 2) and conv2 (5x5), without the final ReLU;
    :math:`l_i` is the mean squared difference of the two feature maps. The "Perceptual"
    term of POYO-CAP's finetuning loss.

    The feature network is built once, frozen (``requires_grad=False``, always in eval
    mode) and loaded from a local state_dict file: nothing is downloaded. Any AlexNet
    state_dict in torchvision's layout works (e.g. ``alexnet-owt-7be5be79.pth``); only the
    keys ``features.0.*`` and ``features.3.*`` are read. Gradients flow to ``input``. The
    network follows ``.to()`` and, since a readout's loss is not a submodule of the model,
    also moves itself to the input's device on first use there.

    .. note::
        The released code re-creates and re-downloads AlexNet on every training step, runs
        it on the CPU, and applies the ImageNet normalisation to 0-255 inputs. We build it
        once, on the input's device, and normalise images in [0, 1].

    Args:
        weights_path: local state_dict file of an AlexNet.
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.

    Raises:
        FileNotFoundError: if ``weights_path`` does not exist.
        ValueError: if it is not a state_dict with AlexNet's first two conv layers.
    """

    def __init__(
        self,
        *,
        weights_path: str | Path,
        frame_aspect_ratio: float = NM1_ASPECT_RATIO,
    ):
        super().__init__(frame_aspect_ratio=frame_aspect_ratio)
        self.weights_path = Path(weights_path)
        self.network = _AlexNetStem()
        _load_stem_weights(self.network, self.weights_path)
        self.network.requires_grad_(False)
        self.network.eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualFeatureLoss:
        """Set training mode; the frozen feature network stays in eval mode."""
        super().train(mode)
        self.network.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        r"""Feature maps of images in [0, 1] of shape :math:`(N, H, W)`.

        Returns:
            Conv2 features of shape :math:`(N, 192, H', W')`.
        """
        if self.mean.device != images.device:
            self.to(images.device)
        rgb = images[:, None].expand(-1, 3, -1, -1).to(self.mean.dtype)
        return self.network((rgb - self.mean) / self.std)

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        height, width = input.shape[1:]
        if min(height, width) < _PERCEPTUAL_MIN_SIDE_PX:
            raise ValueError(
                f"PerceptualFeatureLoss needs frames of at least {_PERCEPTUAL_MIN_SIDE_PX} "
                f"pixels a side; got {height}x{width}"
            )
        with torch.no_grad():
            target_features = self.features(target)
        return (self.features(input) - target_features).pow(2).mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return f"weights_path={str(self.weights_path)!r}, {super().extra_repr()}"


class CAPFrameLoss(_FrameLoss):
    r"""POYO-CAP's stage-2 loss for reconstructing natural-movie frames.

    .. math::
        \mathcal{L} = w_f\,\text{Focal} + w_1\,\text{L1} + w_F\,\text{FFT}
                    + w_p\,\text{Perceptual} + w_s\,(1 - \text{SSIM})

    with the terms :class:`FocalL1Loss`, :class:`PixelL1Loss`, :class:`FFTMagnitudeL1Loss`,
    :class:`PerceptualFeatureLoss` and :class:`SSIMLoss`, all on pixels scaled to [0, 1],
    and the paper's weights 50, 50, 50, 1 and 0.1 by default. Each frame's loss is the
    weighted sum of its terms; frames are then averaged with ``weights`` as in torch_brain.

    The perceptual term needs pretrained AlexNet weights, which are never downloaded: give
    a local file as ``perceptual_weights_path``. Without one the term is off
    (:attr:`perceptual_enabled` is False, and the repr says so) and the first call logs one
    warning. ``perceptual_weight=0`` turns it off silently.

    .. note::
        POYO-CAP's README gives this formula. The released code computes something else:
        its "focal" term is an SSIM term, the focal loss is unused, and the effective
        weights come from operator precedence (e.g. 0.368 on L1, 3e-8 on the perceptual
        term, 6e-5 on an FFT term whose frequency weighting is inverted). We implement the
        formula; see ``docs/stage2_components.md``.

    Args:
        focal_weight: :math:`w_f`.
        l1_weight: :math:`w_1`.
        fft_weight: :math:`w_F`.
        perceptual_weight: :math:`w_p`; the term runs only with ``perceptual_weights_path``.
        ssim_weight: :math:`w_s`.
        perceptual_weights_path: local AlexNet state_dict file (see
            :class:`PerceptualFeatureLoss`), or None.
        focal_alpha: :math:`\alpha` of :class:`FocalL1Loss`.
        focal_gamma: :math:`\gamma` of :class:`FocalL1Loss`.
        fft_high_frequency_weight: :math:`\beta` of :class:`FFTMagnitudeL1Loss`.
        ssim_kernel_size: Gaussian window side of :class:`SSIMLoss` (pixels).
        frame_aspect_ratio: width / height, to unflatten :math:`(N, H \cdot W)` frames.

    Raises:
        ValueError: if a weight is negative, all are 0, or a weights path is given with
            ``perceptual_weight=0``.
    """

    def __init__(
        self,
        *,
        focal_weight: float = 50.0,
        l1_weight: float = 50.0,
        fft_weight: float = 50.0,
        perceptual_weight: float = 1.0,
        ssim_weight: float = 0.1,
        perceptual_weights_path: str | Path | None = None,
        focal_alpha: float = 1.0,
        focal_gamma: float = 1.0,
        fft_high_frequency_weight: float = 2.0,
        ssim_kernel_size: int = 11,
        frame_aspect_ratio: float = NM1_ASPECT_RATIO,
    ):
        super().__init__(frame_aspect_ratio=frame_aspect_ratio)
        self.term_weights = {
            "focal_l1": focal_weight,
            "pixel_l1": l1_weight,
            "fft_magnitude_l1": fft_weight,
            "perceptual": perceptual_weight,
            "ssim": ssim_weight,
        }
        for term, value in self.term_weights.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"{_WEIGHT_ARGS[term]} must be a finite number >= 0; got {value!r}"
                )
        if not any(self.term_weights.values()):
            raise ValueError("CAPFrameLoss: every term weight is 0; at least one must be > 0")
        if perceptual_weights_path is not None and perceptual_weight == 0:
            raise ValueError(
                f"perceptual_weights_path={str(perceptual_weights_path)!r} is set but "
                "perceptual_weight=0; set a positive perceptual_weight or drop the path"
            )
        ratio = {"frame_aspect_ratio": frame_aspect_ratio}
        self.focal_l1 = FocalL1Loss(alpha=focal_alpha, gamma=focal_gamma, **ratio)
        self.pixel_l1 = PixelL1Loss(**ratio)
        self.fft_magnitude_l1 = FFTMagnitudeL1Loss(
            high_frequency_weight=fft_high_frequency_weight, **ratio
        )
        self.ssim = SSIMLoss(kernel_size=ssim_kernel_size, **ratio)
        self.perceptual = (
            PerceptualFeatureLoss(weights_path=perceptual_weights_path, **ratio)
            if perceptual_weights_path is not None
            else None
        )
        self._warned_perceptual_off = False

    @property
    def perceptual_enabled(self) -> bool:
        """Whether the perceptual term contributes to the loss."""
        return self.perceptual is not None

    def _active_terms(self) -> dict[str, _FrameLoss]:
        if not self.perceptual_enabled and self.term_weights["perceptual"] > 0:
            if not self._warned_perceptual_off:
                logger.warning(
                    "CAPFrameLoss: the perceptual term is OFF (perceptual_weight=%s, but no "
                    "perceptual_weights_path was given); the loss is Focal + L1 + FFT + SSIM "
                    "only. Give a local AlexNet state_dict file to turn it on, or set "
                    "perceptual_weight=0 to silence this warning.",
                    self.term_weights["perceptual"],
                )
                self._warned_perceptual_off = True
        terms = {
            "focal_l1": self.focal_l1,
            "pixel_l1": self.pixel_l1,
            "fft_magnitude_l1": self.fft_magnitude_l1,
            "perceptual": self.perceptual,
            "ssim": self.ssim,
        }
        return {
            name: term
            for name, term in terms.items()
            if term is not None and self.term_weights[name] > 0
        }

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = input.new_zeros(input.shape[0])
        for name, term in self._active_terms().items():
            total = total + self.term_weights[name] * term.per_image(input, target)
        return total

    def terms(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        r"""Each active term's weighted mean over frames, before the term weights.

        Args:
            input: predicted grey levels, as in :meth:`forward`.
            target: true grey levels, as in :meth:`forward`.
            weights: per-frame weights, as in :meth:`forward`.

        Returns:
            Scalars by term name (``focal_l1``, ``pixel_l1``, ``fft_magnitude_l1``,
            ``perceptual`` when enabled, ``ssim`` for :math:`1 - \text{SSIM}`); terms with
            weight 0 are left out.
        """
        input, target = self.unit_images(input, target, weights)
        return {
            name: _weighted_mean(term.per_image(input, target), weights)
            for name, term in self._active_terms().items()
        }

    def extra_repr(self) -> str:
        weights = ", ".join(
            f"{_WEIGHT_ARGS[name]}={value}" for name, value in self.term_weights.items()
        )
        state = "on" if self.perceptual_enabled else "off (no perceptual_weights_path)"
        if self.term_weights["perceptual"] == 0:
            state = "off (perceptual_weight=0)"
        return f"{weights}, perceptual_term={state}, {super().extra_repr()}"
