"""The perceptual term: mean squared difference of AlexNet features of the decoded and true
frames."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from poyocap_plugin.losses.image_terms import FrameLoss

__all__ = ["PerceptualFeatureLoss"]

logger = logging.getLogger(__name__)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the perceptual network's input normalisation
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PERCEPTUAL_MIN_SIDE_PX = 15  # smallest frame side the perceptual feature stack accepts


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


class PerceptualFeatureLoss(FrameLoss):
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
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.

    Raises:
        FileNotFoundError: if ``weights_path`` does not exist.
        ValueError: if it is not a state_dict with AlexNet's first two conv layers, or the
            frames are smaller than 15 pixels a side.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        weights_path: str | Path,
    ):
        super().__init__(height=height, width=width)
        if min(height, width) < _PERCEPTUAL_MIN_SIDE_PX:
            raise ValueError(
                f"PerceptualFeatureLoss needs frames of at least {_PERCEPTUAL_MIN_SIDE_PX} "
                f"pixels a side; got {height}x{width}"
            )
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
        with torch.no_grad():
            target_features = self.features(target)
        return (self.features(input) - target_features).pow(2).mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return f"weights_path={str(self.weights_path)!r}, {super().extra_repr()}"
