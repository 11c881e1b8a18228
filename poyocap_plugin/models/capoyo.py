"""CAPOYO: the calcium POYO+ trunk of POYO-CAP, with latent masking."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from temporaldata import Data
from torch import nn
from torch_brain.data import chain, pad8, track_mask8
from torch_brain.nn import (
    Embedding,
    FeedForward,
    InfiniteVocabEmbedding,
    MultitaskReadout,
    RotaryCrossAttention,
    RotarySelfAttention,
    RotaryTimeEmbedding,
    prepare_for_multitask_readout,
)
from torch_brain.registry import DataType, ModalitySpec
from torch_brain.utils.tokenizers import create_linspace_latent_tokens

import poyocap_plugin.modalities  # noqa: F401  (spawned workers register on unpickling)
from poyocap_plugin.brainset import MASKED_LATENT_READOUT, MOVIE_READOUT
from poyocap_plugin.losses import ScaledLoss
from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.latent_masking import LatentMasking

__all__ = ["CAPOYO"]

logger = logging.getLogger(__name__)

# Modules transferred from a stage-1 checkpoint to stage 2. Unit and session vocabularies
# are new in stage 2 (other neurons, other sessions), and so are its readouts.
_TRUNK_MODULES = (
    "input_value_map",  # only with input_token="concat"
    "task_emb",
    "latent_emb",
    "rotary_emb",
    "enc_atn",
    "enc_ffn",
    "proc_layers",
    "dec_atn",
    "dec_ffn",
)
InputToken = Literal["modulated", "concat"]
_INPUT_TOKENS = ("modulated", "concat")
_QUERY_TIME_SPLIT_S = 1e-6
# The modules of which an EMA teacher (``masking.target="ema"``) keeps its own copy.
_TEACHER_MODULES = ("enc_atn", "enc_ffn", "proc_layers")


def _copy_spec(spec, loss_fn) -> ModalitySpec:
    # ``spec`` may be an OmegaConf node: train.py hands the model a snapshot of the registry.
    return ModalitySpec(
        id=int(spec.id),
        dim=int(spec.dim),
        type=DataType(spec.type),
        timestamp_key=str(spec.timestamp_key),
        value_key=str(spec.value_key),
        loss_fn=loss_fn,
    )


class _ReadoutHeads(MultitaskReadout):
    """torch_brain's linear multitask readout, plus the specs of readouts without a head.

    train.py looks every output's loss up in ``model.readout.readout_specs``, so the
    self-supervised readout's spec lives here too, although the trunk, not a linear head,
    produces its output.
    """

    def __init__(
        self,
        *,
        dim: int,
        head_specs: dict[str, ModalitySpec],
        headless_specs: dict[str, ModalitySpec],
    ):
        super().__init__(dim=dim, readout_specs=head_specs)
        self.readout_specs = {**head_specs, **headless_specs}


class CAPOYO(nn.Module):
    r"""Calcium POYO+ trunk of POYO-CAP (Bae, Azabou, Richards, Cha, ICLR 2026).

    Built from torch_brain 0.1.2's own modules, like ``CalciumPOYOPlus``:

    1. Each (2-photon frame, neuron) value becomes a token at the frame's time: the
       neuron's embedding scaled by its dF/F, beside the embedding itself (each
       :math:`D/2` wide; ``input_token``).
    2. Latent tokens (``num_latents_per_step`` per ``latent_step`` bin) cross-attend to the
       input tokens (rotary time embeddings), then a processor of ``depth`` self-attention
       blocks refines them.
    3. With ``masking``, the encoded latents are also passed through the *same* processor
       with some of them replaced by a learned mask token; the masked-latent readout
       compares that path's outputs with the unmasked path's at the masked positions.
    4. Output queries (session embedding + task embedding, at the target times)
       cross-attend to the processed latents; a linear head per configured readout maps
       them to predictions, except for the natural-movie frame readout, whose queries
       go through the skip-connection UNet ``frame_decoder`` (stage 2).

    Unlike ``CalciumPOYOPlus`` it builds heads only for the readouts it is given, sizes
    the task embedding by the highest registered modality id (ids are global), and holds
    no module its forward does not use, so every parameter gets a gradient each step, as
    DDP without ``find_unused_parameters`` requires.

    .. note::
        Where the released POYO-CAP code departs from the paper, we follow the paper:
        a learned mask token over the later half of the latents, an L1 loss on the masked
        positions against a detached target, and the DG cross-entropy weighted 0.01.

    Args:
        sequence_length: window length (s).
        readout_specs: the modality registry; train.py injects a snapshot of it.
        readouts: the supervised readouts to build, by modality name, each with the
            weight of its loss (e.g. ``{"drifting_gratings_orientation": 0.01}``).
            train.py normalises each readout's loss by its per-sample weights, so the
            weight scales the loss itself.
        latent_step: width of a latent time bin (s); must divide ``sequence_length``.
        num_latents_per_step: latents per time bin.
        dim: token width :math:`D` (even).
        depth: number of processor blocks.
        dim_head: width of an attention head.
        cross_heads: heads of the encoder and decoder cross-attentions.
        self_heads: heads of the processor self-attentions.
        ffn_dropout: dropout inside feed-forward blocks.
        lin_dropout: dropout on the processor's residual branches.
        atn_dropout: attention dropout.
        emb_init_scale: std of the embeddings' initialisation.
        t_min: shortest rotary period (s).
        t_max: longest rotary period (s).
        input_token: how a (frame, neuron) value becomes a token of width :math:`D`.
            ``"modulated"`` (default): ``[dF/F x unit embedding ; unit embedding]``, so
            that an average over tokens already carries *which* neurons were active;
            ``"concat"``: ``[Linear(dF/F) ; unit embedding]``, CalciumPOYOPlus's layout,
            whose average carries only the population's mean activity, so that stimulus
            information first has to be learned into the attention weights (a long
            plateau at chance; see ``docs/stage1.md``).
        masking: latent masking for the stage-1 objective, or None for none.
        frame_decoder: the UNet that turns a decoded query into a movie frame; required
            exactly when ``readouts`` names ``natural_movie_one_image``. It lives outside
            ``model.readout``: train.py's sparse optimizer group cannot take its
            parameters.
        frame_loss: the loss of the frame readout (e.g. a ``CAPFrameLoss`` configured with
            perceptual weights), or None for the registry's default.
        pretrained_trunk: a stage-1 Lightning checkpoint to load the trunk from (see
            :meth:`load_pretrained_trunk`), or None to start from scratch.
    """

    def __init__(
        self,
        *,
        sequence_length: float,
        readout_specs: Mapping[str, ModalitySpec],
        readouts: Mapping[str, float],
        latent_step: float,
        num_latents_per_step: int = 16,
        dim: int = 128,
        depth: int = 2,
        dim_head: int = 64,
        cross_heads: int = 2,
        self_heads: int = 8,
        ffn_dropout: float = 0.2,
        lin_dropout: float = 0.4,
        atn_dropout: float = 0.2,
        emb_init_scale: float = 0.02,
        t_min: float = 1e-4,
        t_max: float = 4.0,
        input_token: InputToken = "modulated",
        masking: LatentMasking | None = None,
        frame_decoder: SkipUNetFrameDecoder | None = None,
        frame_loss: nn.Module | None = None,
        pretrained_trunk: str | Path | None = None,
    ):
        super().__init__()
        self._validate(sequence_length, latent_step, dim, readout_specs, readouts, masking)
        self._validate_frames(dim, readouts, frame_decoder, frame_loss)
        self.sequence_length = float(sequence_length)
        self.latent_step = float(latent_step)
        self.num_latents_per_step = num_latents_per_step
        self.num_latent_bins = round(sequence_length / latent_step)
        self.dim = dim

        if input_token not in _INPUT_TOKENS:
            raise ValueError(
                f"model.input_token must be one of {_INPUT_TOKENS}; got {input_token!r}"
            )
        self.input_token = input_token
        if input_token == "concat":
            self.input_value_map = nn.Linear(1, dim // 2)
            nn.init.trunc_normal_(self.input_value_map.weight, 0, emb_init_scale)
            nn.init.zeros_(self.input_value_map.bias)
        self.unit_emb = InfiniteVocabEmbedding(dim // 2, init_scale=emb_init_scale)
        self.session_emb = InfiniteVocabEmbedding(dim, init_scale=emb_init_scale)
        max_id = max(int(spec.id) for spec in readout_specs.values())
        self.task_emb = Embedding(max_id + 1, dim, init_scale=emb_init_scale)
        self.latent_emb = Embedding(num_latents_per_step, dim, init_scale=emb_init_scale)
        self.rotary_emb = RotaryTimeEmbedding(
            head_dim=dim_head, rotate_dim=dim_head // 2, t_min=t_min, t_max=t_max
        )
        self.dropout = nn.Dropout(p=lin_dropout)

        self.enc_atn = RotaryCrossAttention(
            dim=dim, heads=cross_heads, dropout=atn_dropout, dim_head=dim_head, rotate_value=True
        )
        self.enc_ffn = nn.Sequential(nn.LayerNorm(dim), FeedForward(dim=dim, dropout=ffn_dropout))
        self.proc_layers = nn.ModuleList(
            nn.Sequential(
                RotarySelfAttention(
                    dim=dim,
                    heads=self_heads,
                    dropout=atn_dropout,
                    dim_head=dim_head,
                    rotate_value=True,
                ),
                nn.Sequential(nn.LayerNorm(dim), FeedForward(dim=dim, dropout=ffn_dropout)),
            )
            for _ in range(depth)
        )
        self.dec_atn = RotaryCrossAttention(
            dim=dim, heads=cross_heads, dropout=atn_dropout, dim_head=dim_head, rotate_value=False
        )
        self.dec_ffn = nn.Sequential(nn.LayerNorm(dim), FeedForward(dim=dim, dropout=ffn_dropout))

        losses = {name: readout_specs[name].loss_fn for name in readouts}
        if frame_loss is not None:
            losses[MOVIE_READOUT] = frame_loss
        specs = {
            name: _copy_spec(
                readout_specs[name],
                losses[name]
                if weight == 1.0
                else ScaledLoss(loss=losses[name], weight=float(weight)),
            )
            for name, weight in readouts.items()
        }
        head_specs = {k: v for k, v in specs.items() if k != MOVIE_READOUT}
        headless_specs = {k: v for k, v in specs.items() if k == MOVIE_READOUT}
        if masking is not None:
            spec = readout_specs[MASKED_LATENT_READOUT]
            headless_specs[MASKED_LATENT_READOUT] = _copy_spec(spec, spec.loss_fn)
            self.num_masked = masking.num_masked(
                num_bins=self.num_latent_bins, num_latents_per_bin=num_latents_per_step
            )
        self.masking = masking
        self.frame_decoder = frame_decoder
        self.readout = _ReadoutHeads(dim=dim, head_specs=head_specs, headless_specs=headless_specs)

        if pretrained_trunk is not None:
            self.load_pretrained_trunk(pretrained_trunk)
        self.teacher = None
        if masking is not None and masking.target == "ema":
            # Frozen copies, updated by update_teacher; the teacher shares the token
            # embeddings (train.py builds the unit vocabulary after the model).
            self.teacher = nn.ModuleDict(
                {name: copy.deepcopy(getattr(self, name)) for name in _TEACHER_MODULES}
            )
            self.teacher.requires_grad_(False)
            self.register_buffer("teacher_steps", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _validate(sequence_length, latent_step, dim, readout_specs, readouts, masking) -> None:
        for name, value in (("sequence_length", sequence_length), ("latent_step", latent_step)):
            if not isinstance(value, float) or value <= 0:
                raise ValueError(
                    f"model.{name} must be a float > 0 (write 1.0, not 1); got {value!r}"
                )
        bins = sequence_length / latent_step
        if abs(bins - round(bins)) > 1e-6:
            raise ValueError(
                f"model.latent_step={latent_step} must divide model.sequence_length="
                f"{sequence_length} into whole bins"
            )
        if dim % 2:
            raise ValueError(f"model.dim must be even (dF/F and unit halves); got {dim}")
        if not readouts:
            raise ValueError("model.readouts names no readout: give at least one, with its weight")
        for name, weight in readouts.items():
            if name not in readout_specs:
                raise ValueError(
                    f"model.readouts names {name!r}, which is not a registered modality; "
                    f"known: {sorted(readout_specs)}"
                )
            if name == MASKED_LATENT_READOUT:
                raise ValueError(
                    f"model.readouts must not name {MASKED_LATENT_READOUT!r}: it is built "
                    "from model.masking"
                )
            if not weight > 0:
                raise ValueError(f"model.readouts.{name} must be a weight > 0; got {weight!r}")
        if masking is not None:
            if masking.dim != dim:
                raise ValueError(
                    f"model.masking.dim={masking.dim} differs from model.dim={dim}; "
                    "set it to ${model.dim}"
                )
            if MASKED_LATENT_READOUT not in readout_specs:
                raise ValueError(
                    f"{MASKED_LATENT_READOUT!r} is not in the registry the model was given: "
                    "import poyocap_plugin.modalities before building the registry snapshot "
                    "(Hydra does it at start-up when poyocap-plugin is installed)"
                )

    @staticmethod
    def _validate_frames(dim, readouts, frame_decoder, frame_loss) -> None:
        wants_frames = MOVIE_READOUT in readouts
        if wants_frames and frame_decoder is None:
            raise ValueError(
                f"model.readouts names {MOVIE_READOUT!r}, which needs "
                "model.frame_decoder (a SkipUNetFrameDecoder)"
            )
        if not wants_frames and (frame_decoder is not None or frame_loss is not None):
            raise ValueError(
                "model.frame_decoder / model.frame_loss are set but model.readouts does not "
                f"name {MOVIE_READOUT!r}: an unused module breaks DDP; remove them"
            )
        if frame_decoder is not None and frame_decoder.dim != dim:
            raise ValueError(
                f"model.frame_decoder.dim={frame_decoder.dim} differs from model.dim={dim}; "
                "set it to ${model.dim}"
            )

    def _check_vocabularies(self) -> None:
        for name, embedding in (("unit_emb", self.unit_emb), ("session_emb", self.session_emb)):
            if embedding.is_lazy():
                raise ValueError(
                    f"{name} has no vocabulary yet: call model.{name}.initialize_vocab(ids)"
                )

    def _embed_inputs(self, input_unit_index: torch.Tensor, input_values: torch.Tensor):
        unit = self.unit_emb(input_unit_index)
        if self.input_token == "concat":
            return torch.cat((self.input_value_map(input_values), unit), dim=-1)
        return torch.cat((input_values * unit, unit), dim=-1)

    @staticmethod
    def _encode(modules, latents, inputs, latent_timestamp_emb, input_timestamp_emb, input_mask):
        # ``modules``: the model itself, or its EMA teacher (same names, own weights)
        latents = latents + modules.enc_atn(
            latents, inputs, latent_timestamp_emb, input_timestamp_emb, input_mask
        )
        return latents + modules.enc_ffn(latents)

    def _process(self, proc_layers, latents, latent_timestamp_emb) -> torch.Tensor:
        for self_attn, self_ff in proc_layers:
            latents = latents + self.dropout(self_attn(latents, latent_timestamp_emb))
            latents = latents + self.dropout(self_ff(latents))
        return latents

    def _trivial_predictions(
        self, target: torch.Tensor, latent_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two predictions of every latent's target from the window's unmasked targets.

        Returns ``(window_mean, copy_forward)``, each :math:`(B, N_{latent}, D)`: the mean
        of the unmasked target latents, and the target of the same latent id in the last
        unmasked bin before it (the window mean where there is none).
        """
        unmasked = (~latent_mask).unsqueeze(-1).to(target.dtype)
        window_mean = (target * unmasked).sum(1, keepdim=True) / unmasked.sum(1, keepdim=True)
        window_mean = window_mean.expand_as(target)
        shape = (target.shape[0], self.num_latent_bins, self.num_latents_per_step, -1)
        binned, binned_mask = target.reshape(shape), latent_mask.reshape(shape[:3]).unsqueeze(-1)
        carried = window_mean.reshape(shape)[:, 0]
        copies = []
        for step in range(self.num_latent_bins):
            copies.append(torch.where(binned_mask[:, step], carried, binned[:, step]))
            carried = copies[-1]
        return window_mean, torch.stack(copies, 1).reshape(target.shape)

    def encode(
        self,
        *,
        input_unit_index: torch.Tensor,
        input_timestamps: torch.Tensor,
        input_values: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        latent_index: torch.Tensor,
        latent_timestamps: torch.Tensor,
    ) -> torch.Tensor:
        r"""The processed latents of a batch, without masking or readouts (for probes).

        Args:
            input_unit_index, input_timestamps, input_values, input_mask, latent_index,
                latent_timestamps: as in :meth:`forward`.

        Returns:
            Processed latents of shape :math:`(B, N_{latent}, D)`.
        """
        self._check_vocabularies()
        latent_timestamp_emb = self.rotary_emb(latent_timestamps)
        encoded = self._encode(
            self,
            self.latent_emb(latent_index),
            self._embed_inputs(input_unit_index, input_values),
            latent_timestamp_emb,
            self.rotary_emb(input_timestamps),
            input_mask,
        )
        return self._process(self.proc_layers, encoded, latent_timestamp_emb)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """Move the EMA teacher one step towards the online weights.

        Called by :meth:`forward` at the start of every training step, so it runs once per
        optimiser step (train.py accumulates no gradients) with the weights that step left;
        every DDP rank applies the same update to the same weights. The step count is a
        buffer, so a resumed run continues the decay schedule where it stopped.
        """
        decay = self.masking.decay_at(int(self.teacher_steps))
        for name, teacher in self.teacher.items():
            for target, online in zip(
                teacher.parameters(), getattr(self, name).parameters(), strict=True
            ):
                target.lerp_(online, 1.0 - decay)
        self.teacher_steps += 1

    def forward(
        self,
        *,
        input_unit_index: torch.Tensor,
        input_timestamps: torch.Tensor,
        input_values: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        latent_index: torch.Tensor,
        latent_timestamps: torch.Tensor,
        output_session_index: torch.Tensor,
        output_timestamps: torch.Tensor,
        output_decoder_index: torch.Tensor,
        latent_mask: torch.Tensor | None = None,
        unpack_output: bool = False,
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        r"""Predict every readout at its output queries.

        Args:
            input_unit_index: unit vocabulary index of each input token, :math:`(B, N_{in})`
                (int64).
            input_timestamps: time of each input token (s), :math:`(B, N_{in})`.
            input_values: dF/F of each input token, :math:`(B, N_{in}, 1)`.
            input_mask: True for real (not padding) input tokens, :math:`(B, N_{in})`.
            latent_index: latent id of each latent token, :math:`(B, N_{latent})` (int64).
            latent_timestamps: time of each latent token (s), :math:`(B, N_{latent})`.
            output_session_index: session vocabulary index per query, :math:`(B, N_{out})`.
            output_timestamps: time of each query (s), :math:`(B, N_{out})`.
            output_decoder_index: modality id per query (0 = padding), :math:`(B, N_{out})`.
            latent_mask: True for the masked latents, :math:`(B, N_{latent})`; required
                when the model masks.
            unpack_output: return one dict per sample instead of one for the batch.

        Returns:
            ``{readout: predictions}`` with the queries of the whole batch concatenated:
            :math:`(N_q, \text{dim}_{readout})` for a linear readout,
            :math:`(N_q, H \cdot W)` frames in [0, 255] for the movie frame readout, and
            :math:`(B \cdot N_{mask}, 4D)` (the blocks of ``MASKED_LATENT_BLOCKS``) for the
            masked-latent readout; or, with ``unpack_output``, a list of such dicts,
            one per sample.
        """
        self._check_vocabularies()
        if self.teacher is not None and self.training and torch.is_grad_enabled():
            self.update_teacher()
        inputs = self._embed_inputs(input_unit_index, input_values)
        input_timestamp_emb = self.rotary_emb(input_timestamps)
        latent_timestamp_emb = self.rotary_emb(latent_timestamps)
        latent_id_emb = self.latent_emb(latent_index)
        encoded = self._encode(
            self, latent_id_emb, inputs, latent_timestamp_emb, input_timestamp_emb, input_mask
        )
        processed = self._process(self.proc_layers, encoded, latent_timestamp_emb)

        queries = self.session_emb(output_session_index) + self.task_emb(output_decoder_index)
        output_timestamp_emb = self.rotary_emb(output_timestamps)
        queries = queries + self.dec_atn(
            queries, processed, output_timestamp_emb, latent_timestamp_emb
        )
        queries = queries + self.dec_ffn(queries)
        output = self.readout(
            output_embs=queries,
            output_readout_index=output_decoder_index,
            unpack_output=unpack_output,
        )

        if self.frame_decoder is not None:
            frame_id = self.readout.readout_specs[MOVIE_READOUT].id
            is_frame = output_decoder_index == frame_id
            # flattened: torch_brain's stitcher pools only 1-D and 2-D values
            frames = self.frame_decoder(queries[is_frame]).flatten(1)
            if unpack_output:
                sample_of_frame = torch.where(is_frame)[0]
                for i, sample_output in enumerate(output):
                    if bool((sample_of_frame == i).any()):
                        sample_output[MOVIE_READOUT] = frames[sample_of_frame == i]
            elif len(frames):
                output[MOVIE_READOUT] = frames

        if self.masking is not None:
            if latent_mask is None:
                raise ValueError("model.masking is set, so forward needs latent_mask")
            reconstructed = self._process(
                self.proc_layers,
                self.masking(encoded, latent_mask, latent_id_emb),
                latent_timestamp_emb,
            )
            if self.teacher is None:
                target = processed
            else:
                with torch.no_grad():
                    target = self._process(
                        self.teacher.proc_layers,
                        self._encode(
                            self.teacher,
                            latent_id_emb,
                            inputs,
                            latent_timestamp_emb,
                            input_timestamp_emb,
                            input_mask,
                        ),
                        latent_timestamp_emb,
                    )
            target = self.masking.reference(target)
            window_mean, copy_forward = self._trivial_predictions(target.detach(), latent_mask)
            batch = latent_mask.shape[0]
            pairs = torch.cat(
                [
                    block[latent_mask].view(batch, self.num_masked, self.dim)
                    for block in (reconstructed, target, window_mean, copy_forward)
                ],
                dim=-1,
            )  # (B, N_mask, 4D): the blocks of MASKED_LATENT_BLOCKS
            if unpack_output:
                for sample_output, sample_pairs in zip(output, pairs, strict=True):
                    sample_output[MASKED_LATENT_READOUT] = sample_pairs
            else:
                output[MASKED_LATENT_READOUT] = pairs.flatten(0, 1)
        return output

    def tokenize(self, data: Data) -> dict:
        """Turn one window into model inputs and targets (the stock trainer's last transform).

        Runs on the CPU, in DataLoader workers. The input tokens are every (frame, unit)
        dF/F value of ``data.calcium_traces.df_over_f`` (columns aligned with
        ``data.units.id``). The output queries are those of the window's readouts
        (``data.config["multitask_readout"]``), plus, when the model masks, one query per
        masked latent for the masked-latent readout, at that latent's time.

        Raises:
            KeyError: if the recording's config asks for a readout the model lacks.
        """
        wanted = [r["readout_id"] for r in data.config["multitask_readout"]]
        if self.masking is None and MASKED_LATENT_READOUT in wanted:
            # a stage-1 dataset config run with masking off: the readout has no queries
            wanted.remove(MASKED_LATENT_READOUT)
        missing = [name for name in wanted if name not in self.readout.readout_specs]
        if missing:
            raise KeyError(
                f"Recording {data.session.id!r} asks for readouts {missing}, but the model "
                f"was built with {sorted(self.readout.readout_specs)}: add them to "
                "model.readouts or remove them from the dataset config"
            )
        df_over_f = np.asarray(data.calcium_traces.df_over_f, dtype=np.float32)
        num_frames, num_units = df_over_f.shape
        unit_index = np.asarray(self.unit_emb.tokenizer(list(data.units.id)), dtype=np.int64)
        input_unit_index = torch.from_numpy(np.tile(unit_index, num_frames))
        input_timestamps = torch.from_numpy(
            np.repeat(np.asarray(data.calcium_traces.timestamps, dtype=np.float64), num_units)
        )
        input_values = torch.from_numpy(df_over_f.reshape(-1, 1))

        latent_index, latent_timestamps = create_linspace_latent_tokens(
            0.0,
            self.sequence_length,
            step=self.latent_step,
            num_latents_per_step=self.num_latents_per_step,
        )
        if MASKED_LATENT_READOUT in (r["readout_id"] for r in data.config["multitask_readout"]):
            # A dataset config names the masked-latent readout only to attach validation
            # metrics; its queries are the masked latents, added below.
            data.config = {
                **data.config,
                "multitask_readout": [
                    r
                    for r in data.config["multitask_readout"]
                    if r["readout_id"] != MASKED_LATENT_READOUT
                ],
            }
        timestamps, values, decoder_index, weights, eval_mask = prepare_for_multitask_readout(
            data, self.readout.readout_specs
        )
        model_inputs = {}
        if self.masking is not None:
            latent_mask = self.masking.select(
                num_bins=self.num_latent_bins, num_latents_per_bin=self.num_latents_per_step
            )
            # Apart by a microsecond per latent id, so that the evaluator's stitcher, which
            # pools outputs of equal time, keeps the latents of one bin apart.
            masked_times = (
                latent_timestamps[latent_mask] + _QUERY_TIME_SPLIT_S * latent_index[latent_mask]
            )
            spec = self.readout.readout_specs[MASKED_LATENT_READOUT]
            timestamps = torch.cat((torch.as_tensor(timestamps), torch.from_numpy(masked_times)))
            decoder_index = torch.cat(
                (decoder_index, torch.full((len(masked_times),), spec.id, dtype=torch.long))
            )
            values[MASKED_LATENT_READOUT] = np.zeros(len(masked_times), dtype=np.float32)
            weights[MASKED_LATENT_READOUT] = np.ones(len(masked_times), dtype=np.float32)
            eval_mask[MASKED_LATENT_READOUT] = np.ones(len(masked_times), dtype=bool)
            model_inputs["latent_mask"] = latent_mask
        session_index = np.full(len(timestamps), self.session_emb.tokenizer(data.session.id))

        model_inputs.update(
            input_unit_index=pad8(input_unit_index),
            input_timestamps=pad8(input_timestamps),
            input_values=pad8(input_values),
            input_mask=track_mask8(input_unit_index),
            latent_index=latent_index,
            latent_timestamps=latent_timestamps,
            output_session_index=pad8(session_index),
            output_timestamps=pad8(timestamps),
            output_decoder_index=pad8(decoder_index),
        )
        return {
            "model_inputs": model_inputs,
            "target_values": chain(values, allow_missing_keys=True),
            "target_weights": chain(weights, allow_missing_keys=True),
            "session_id": data.session.id,
            "absolute_start": data.absolute_start,
            "eval_mask": chain(eval_mask, allow_missing_keys=True),
        }

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters and buffers that stage 2 takes over from stage 1."""
        return {
            key: value
            for key, value in self.state_dict().items()
            if key.split(".", 1)[0] in _TRUNK_MODULES
        }

    def load_pretrained_trunk(self, path: str | Path) -> None:
        """Load the trunk from a stage-1 Lightning checkpoint written by train.py.

        Unit and session embeddings, readout heads and the mask token are not loaded:
        train.py gives the new model vocabularies for its own neurons and sessions.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            KeyError: naming every trunk key the checkpoint lacks.
            ValueError: naming every key whose shape differs (a model of another size).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model.pretrained_trunk: {path} does not exist")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        if "state_dict" not in checkpoint:
            raise KeyError(f"{path} is not a Lightning checkpoint: it has no 'state_dict'")
        source = {
            key.removeprefix("model."): value
            for key, value in checkpoint["state_dict"].items()
            if key.startswith("model.")
        }
        expected = self.trunk_state_dict()
        missing = sorted(set(expected) - set(source))
        if missing:
            raise KeyError(f"{path} lacks trunk keys {missing}: is it a CAPOYO checkpoint?")
        task_rows = expected["task_emb.weight"].shape[0]
        if source["task_emb.weight"].shape[0] < task_rows:
            # Modality ids are append-only: a registry that grew since stage 1 keeps the
            # old ids, whose rows we take over; the new rows keep their initialisation.
            grown = expected["task_emb.weight"].clone()
            grown[: source["task_emb.weight"].shape[0]] = source["task_emb.weight"]
            source["task_emb.weight"] = grown
        mismatched = [
            f"{key}: checkpoint {tuple(source[key].shape)} vs model {tuple(value.shape)}"
            for key, value in expected.items()
            if source[key].shape != value.shape
        ]
        if mismatched:
            raise ValueError(
                f"{path} holds a trunk of another size; mismatched keys: "
                + "; ".join(mismatched)
                + ". Use the model config of the stage-1 run."
            )
        # Module by module: the lazy vocabularies' load hooks expect their own keys.
        for name in _TRUNK_MODULES:
            if not hasattr(self, name):  # input_value_map of a "modulated" token
                continue
            getattr(self, name).load_state_dict(
                {
                    key.removeprefix(f"{name}."): source[key]
                    for key in expected
                    if key.split(".", 1)[0] == name
                }
            )
        logger.info("Loaded the trunk (%d tensors) from %s", len(expected), path)
