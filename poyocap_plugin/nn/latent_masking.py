"""Latent masking for POYO-CAP's stage-1 self-supervision."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

__all__ = ["LatentMasking"]

MaskKind = Literal["causal", "random"]
MaskTarget = Literal["detached", "shared"]


class LatentMasking(nn.Module):
    r"""Hides part of the encoded latents behind a learned mask token.

    POYO-CAP (Bae et al., ICLR 2026) pretrains the encoder by masked latent
    reconstruction: after the encoder cross-attention, some latent tokens are replaced by
    a mask token (keeping their own times, so rotary attention still knows *when* they
    are), the shared processor runs on the masked set, and its outputs at the masked
    positions are compared with the processed latents of the unmasked path.

    Which latents are masked is drawn on the CPU, in the tokenizer, so that the masked
    positions travel with the sample: ``select`` returns the boolean mask of one window,
    and ``forward`` applies a batch of them.

    .. note::
        The paper masks the later half of the window ("causal") with a mask token and
        uses an L1 loss on those positions. The released code zeroes one feature channel
        (a slicing bug), uses no mask token and computes MSE over every latent. We follow
        the paper; see ``docs/stage1.md``.

    Args:
        dim: latent width :math:`D`.
        ratio: fraction of the latents to mask, in (0, 1).
        kind: ``"causal"`` masks the latents of the last ``round(ratio * n_bins)`` time
            bins of every window (the future half for 0.5); ``"random"`` masks
            ``round(ratio * n_latents)`` latents drawn anew for every sample.
        target: ``"detached"`` stops the gradient through the reference latents (the
            default, against collapse); ``"shared"`` lets it flow, as the released code.
        seed: seed of the generator used by ``kind="random"``; each DataLoader worker
            offsets it by its worker id.
    """

    def __init__(
        self,
        *,
        dim: int,
        ratio: float = 0.5,
        kind: MaskKind = "causal",
        target: MaskTarget = "detached",
        seed: int = 0,
    ):
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"masking.ratio must be in (0, 1); got {ratio!r}")
        if kind not in ("causal", "random"):
            raise ValueError(f"masking.kind must be 'causal' or 'random'; got {kind!r}")
        if target not in ("detached", "shared"):
            raise ValueError(f"masking.target must be 'detached' or 'shared'; got {target!r}")
        self.dim = dim
        self.ratio = ratio
        self.kind = kind
        self.target = target
        self.seed = seed
        self.mask_token = nn.Parameter(torch.empty(dim))
        nn.init.trunc_normal_(self.mask_token, 0.0, 0.02)
        self._rng: np.random.Generator | None = None

    def num_masked(self, *, num_bins: int, num_latents_per_bin: int) -> int:
        """Number of masked latents per window, the same for every window.

        Raises:
            ValueError: if the ratio masks no latent, or all of them, at this grid.
        """
        if self.kind == "causal":
            count = round(self.ratio * num_bins) * num_latents_per_bin
        else:
            count = round(self.ratio * num_bins * num_latents_per_bin)
        total = num_bins * num_latents_per_bin
        if not 0 < count < total:
            raise ValueError(
                f"masking.ratio={self.ratio} masks {count} of {total} latents "
                f"({num_bins} time bins of {num_latents_per_bin}) with kind={self.kind!r}; "
                "choose a ratio that masks some but not all of them"
            )
        return count

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            worker = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng(self.seed + (worker.id if worker else 0))
        return self._rng

    def select(self, *, num_bins: int, num_latents_per_bin: int) -> np.ndarray:
        """Choose the masked latents of one window (CPU; called by the tokenizer).

        Latents are ordered time-major: bin 0's latents first.

        Returns:
            bool array of shape :math:`(N_{latent},)`, True where masked.
        """
        count = self.num_masked(num_bins=num_bins, num_latents_per_bin=num_latents_per_bin)
        total = num_bins * num_latents_per_bin
        mask = np.zeros(total, dtype=bool)
        if self.kind == "causal":
            mask[total - count :] = True
        else:
            mask[self._generator().choice(total, size=count, replace=False)] = True
        return mask

    def forward(self, latents: torch.Tensor, latent_mask: torch.Tensor) -> torch.Tensor:
        r"""Replace the masked latents by the mask token.

        Args:
            latents: encoded latents of shape :math:`(B, N_{latent}, D)`.
            latent_mask: bool mask of shape :math:`(B, N_{latent})`, True where masked.

        Returns:
            The masked latents, of shape :math:`(B, N_{latent}, D)`.
        """
        return torch.where(latent_mask.unsqueeze(-1), self.mask_token.to(latents.dtype), latents)

    def reference(self, latents: torch.Tensor) -> torch.Tensor:
        """The reconstruction target: the unmasked path's latents, detached if configured."""
        return latents.detach() if self.target == "detached" else latents

    def __getstate__(self):
        # A worker builds its own generator (seeded by its id) rather than copying ours.
        state = self.__dict__.copy()
        state["_rng"] = None
        return state
