"""Latent masking for POYO-CAP's stage-1 self-supervision."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LatentMasking", "pack_masked_latents", "trivial_predictions"]

MaskKind = Literal["causal", "random"]
MaskTarget = Literal["detached", "shared", "ema", "input"]
_TARGETS = ("detached", "shared", "ema", "input")
_INPUT_PROJECTION_SEED = 20260  # the fixed random projection of the "input" target


class LatentMasking(nn.Module):
    r"""Hides part of the encoded latents behind a learned mask token.

    POYO-CAP (Bae et al., ICLR 2026) pretrains the encoder by masked latent
    reconstruction: after the encoder cross-attention, some latent tokens are replaced by
    a mask token, the shared processor runs on the masked set, and its outputs at the
    masked positions are compared with a target built from the unmasked input.

    A masked latent keeps its identity: it becomes the mask token *plus its own latent-id
    embedding*, at its own time (rotary attention knows *when* it is). With the mask token
    alone, the latents of one time bin would be identical, so the processor would give them
    one output while their targets differ: a floor the loss could never go below.

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
        target: what the masked latents are compared with. ``"detached"``: the online
            network's processed latents with the gradient stopped (the paper's
            ``L1(Z_masked, Z)``); ``"shared"``: the same with the gradient flowing, as the
            released code; ``"ema"``: the processed latents of a momentum teacher, an
            exponential moving average of the encoder and processor (BYOL, data2vec);
            ``"input"``: the input itself, not a latent: a fixed random projection of the
            latent's time bin's dF/F (see :meth:`input_target`), which no weight can move.
        normalize_target: layer-normalise each target latent over its :math:`D` features
            (no affine), as data2vec does: a target of constant scale that cannot shrink.
        ema_decay: the teacher's decay at the first optimiser step (``target="ema"``).
        ema_decay_end: its decay after ``ema_anneal_steps`` steps (cosine in between).
        ema_anneal_steps: optimiser steps over which the decay moves to ``ema_decay_end``.
        seed: seed of the generator used by ``kind="random"``; each DataLoader worker
            offsets it by its worker id.
    """

    def __init__(
        self,
        *,
        dim: int,
        ratio: float = 0.5,
        kind: MaskKind = "causal",
        target: MaskTarget = "input",
        normalize_target: bool = False,
        ema_decay: float = 0.996,
        ema_decay_end: float = 1.0,
        ema_anneal_steps: int = 1000,
        seed: int = 0,
    ):
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"masking.ratio must be in (0, 1); got {ratio!r}")
        if kind not in ("causal", "random"):
            raise ValueError(f"masking.kind must be 'causal' or 'random'; got {kind!r}")
        if target not in _TARGETS:
            raise ValueError(f"masking.target must be one of {_TARGETS}; got {target!r}")
        for name, decay in (("ema_decay", ema_decay), ("ema_decay_end", ema_decay_end)):
            if not 0.0 <= decay <= 1.0:
                raise ValueError(f"masking.{name} must be in [0, 1]; got {decay!r}")
        if ema_anneal_steps < 1:
            raise ValueError(f"masking.ema_anneal_steps must be >= 1; got {ema_anneal_steps!r}")
        self.dim = dim
        self.ratio = ratio
        self.kind = kind
        self.target = target
        self.normalize_target = normalize_target
        self.ema_decay = ema_decay
        self.ema_decay_end = ema_decay_end
        self.ema_anneal_steps = ema_anneal_steps
        self.seed = seed
        self.mask_token = nn.Parameter(torch.empty(dim))
        nn.init.trunc_normal_(self.mask_token, 0.0, 0.02)
        self._rng: np.random.Generator | None = None
        # the "input" target's (vocabulary size, D) table: drawn when first used, not a
        # buffer, so that checkpoints and DDP's buffer broadcast never see it
        self._unit_projection: torch.Tensor | None = None

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

    def forward(
        self, latents: torch.Tensor, latent_mask: torch.Tensor, latent_id_emb: torch.Tensor
    ) -> torch.Tensor:
        r"""Replace the masked latents by the mask token plus their latent-id embedding.

        Args:
            latents: encoded latents of shape :math:`(B, N_{latent}, D)`.
            latent_mask: bool mask of shape :math:`(B, N_{latent})`, True where masked.
            latent_id_emb: each latent's id embedding, of shape :math:`(B, N_{latent}, D)`.

        Returns:
            The masked latents, of shape :math:`(B, N_{latent}, D)`.
        """
        masked = self.mask_token.to(latents.dtype) + latent_id_emb
        return torch.where(latent_mask.unsqueeze(-1), masked, latents)

    def reference(self, latents: torch.Tensor) -> torch.Tensor:
        """The reconstruction target from the target path's latents (detached unless
        ``target="shared"``), layer-normalised if configured."""
        if self.target != "shared":
            latents = latents.detach()
        if self.normalize_target:
            latents = F.layer_norm(latents, latents.shape[-1:])
        return latents

    def input_target(
        self,
        *,
        input_unit_index: torch.Tensor,
        input_values: torch.Tensor,
        input_timestamps: torch.Tensor,
        input_mask: torch.Tensor | None,
        latent_timestamps: torch.Tensor,
        num_latents_per_bin: int,
        num_units: int,
    ) -> torch.Tensor:
        r"""The ``"input"`` target: each time bin's activity through a fixed random projection.

        Every unit has a fixed random vector :math:`r_u \sim N(0, I_D)`, drawn from a fixed
        seed for the whole unit vocabulary (the same on every DDP rank and after a resume;
        not saved). The target of the latents of a time bin is
        :math:`\sum_u \bar v_u r_u / \sqrt{U}` over the :math:`U` units with tokens in the
        bin (the tokens nearest the bin's time), :math:`\bar v_u` the mean value of unit
        :math:`u`'s tokens there: of the scale of one unit's z-scored dF/F in each feature.
        Predicting it for the masked (future) bins asks the trunk for those bins'
        population activity, whose predictable part is what the stimulus drives; no trunk
        weight can shrink or move it.

        Args:
            input_unit_index, input_values, input_timestamps, input_mask: the input tokens,
                as in :meth:`CAPOYO.forward`.
            latent_timestamps: the latents' times, :math:`(B, N_{latent})`, bin-major: the
                ``num_latents_per_bin`` latents of a bin share one time.
            num_latents_per_bin: latents per time bin.
            num_units: the unit vocabulary's size.

        Returns:
            :math:`(B, N_{latent}, D)`, without gradient.
        """
        values = input_values.detach().reshape(input_unit_index.shape)
        table = self._unit_projection
        if table is None or len(table) != num_units or table.device != values.device:
            generator = torch.Generator().manual_seed(_INPUT_PROJECTION_SEED)
            table = torch.randn(num_units, self.dim, generator=generator).to(values.device)
            self._unit_projection = table
        real = torch.ones_like(values) if input_mask is None else input_mask.to(values.dtype)
        bin_times = latent_timestamps[:, ::num_latents_per_bin]  # (B, N_bin)
        bins = (input_timestamps.unsqueeze(-1) - bin_times.unsqueeze(1)).abs().argmin(-1)
        # each unit's sum and token count per bin, (B, N_bin, num_units)
        cell = bins * num_units + input_unit_index
        size = (len(values), bin_times.shape[1] * num_units)
        sums = values.new_zeros(size).scatter_add_(1, cell, values * real)
        counts = values.new_zeros(size).scatter_add_(1, cell, real)
        unit_means = (sums / counts.clamp(min=1.0)).view(*bin_times.shape, num_units)
        units_present = (counts > 0).view(*bin_times.shape, num_units).sum(-1, keepdim=True)
        per_bin = unit_means @ table.to(values.dtype) / units_present.clamp(min=1).sqrt()
        return per_bin.repeat_interleave(num_latents_per_bin, dim=1)

    def decay_at(self, step: int) -> float:
        """The teacher's EMA decay after ``step`` optimiser steps (cosine schedule)."""
        progress = min(step / self.ema_anneal_steps, 1.0)
        return (
            self.ema_decay_end
            - (self.ema_decay_end - self.ema_decay) * (1.0 + math.cos(math.pi * progress)) / 2.0
        )

    def __getstate__(self):
        # A worker builds its own generator (seeded by its id) rather than copying ours.
        state = self.__dict__.copy()
        state["_rng"] = None
        return state


def trivial_predictions(
    target: torch.Tensor,
    latent_mask: torch.Tensor,
    *,
    num_bins: int,
    num_latents_per_bin: int,
    recording: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Three predictions of every latent's target that need no model.

    The baselines the masked-latent readout reports beside the model's reconstruction:
    two from the window's own unmasked targets, one from the position alone.

    Args:
        target: target latents, :math:`(B, N_{latent}, D)`, bin-major
            (:math:`N_{latent}` = ``num_bins`` x ``num_latents_per_bin``).
        latent_mask: True for the masked latents, :math:`(B, N_{latent})` (bool).
        num_bins: time bins per window.
        num_latents_per_bin: latents per time bin.
        recording: which recording each window comes from, :math:`(B,)` (any integer id,
            e.g. the session index); None: all from one.

    Returns:
        ``(window_mean, copy_forward, position_mean)``, each :math:`(B, N_{latent}, D)`: the
        mean of the window's unmasked target latents; the target of the same latent id in
        the last unmasked bin before it (the window mean where there is none); and the mean
        target at the same position (bin and latent id) in the batch's *other* windows of
        the same recording, which knows where a latent is and whose neurons encode it but
        nothing of this window (the window mean when the batch holds no such window).
    """
    unmasked = (~latent_mask).unsqueeze(-1).to(target.dtype)
    window_mean = (target * unmasked).sum(1, keepdim=True) / unmasked.sum(1, keepdim=True)
    window_mean = window_mean.expand_as(target)
    shape = (target.shape[0], num_bins, num_latents_per_bin, -1)
    binned, binned_mask = target.reshape(shape), latent_mask.reshape(shape[:3]).unsqueeze(-1)
    carried = window_mean.reshape(shape)[:, 0]
    copies = []
    for step in range(num_bins):
        copies.append(torch.where(binned_mask[:, step], carried, binned[:, step]))
        carried = copies[-1]
    if recording is None:
        recording = torch.zeros(target.shape[0], dtype=torch.long, device=target.device)
    others = recording[:, None] == recording[None, :]
    others.fill_diagonal_(False)
    count = others.sum(1).view(-1, 1, 1)
    position_sum = (others.to(target.dtype) @ target.flatten(1)).view_as(target)
    position_mean = torch.where(count > 0, position_sum / count.clamp(min=1), window_mean)
    return window_mean, torch.stack(copies, 1).reshape(target.shape), position_mean


def pack_masked_latents(
    reconstructed: torch.Tensor,
    target: torch.Tensor,
    latent_mask: torch.Tensor,
    *,
    num_masked: int,
    num_bins: int,
    num_latents_per_bin: int,
    recording: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The masked-latent readout's output: five blocks per masked latent.

    Args:
        reconstructed: the masked path's latents, :math:`(B, N_{latent}, D)`.
        target: the reference latents, :math:`(B, N_{latent}, D)`; its trivial predictions
            (:func:`trivial_predictions`) are computed without gradient.
        latent_mask: True for the masked latents, :math:`(B, N_{latent})` (bool), the same
            number per sample.
        num_masked: :math:`N_{mask}`, masked latents per sample (a view of any other count
            raises).
        recording: which recording each window comes from, :math:`(B,)`, for the position
            mean (see :func:`trivial_predictions`).
        num_bins: time bins per window.
        num_latents_per_bin: latents per time bin.

    Returns:
        :math:`(B, N_{mask}, 5D)`: reconstruction, target, window mean, copy-forward and
        position mean of
        each masked latent (the blocks of ``poyocap_plugin.losses.MASKED_LATENT_BLOCKS``).
    """
    window_mean, copy_forward, position_mean = trivial_predictions(
        target.detach(),
        latent_mask,
        num_bins=num_bins,
        num_latents_per_bin=num_latents_per_bin,
        recording=recording,
    )
    batch, dim = latent_mask.shape[0], target.shape[-1]
    return torch.cat(
        [
            block[latent_mask].view(batch, num_masked, dim)
            for block in (reconstructed, target, window_mean, copy_forward, position_mean)
        ],
        dim=-1,
    )
