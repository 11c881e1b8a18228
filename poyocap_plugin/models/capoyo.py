"""CAPOYO: the calcium POYO+ trunk of POYO-CAP, with latent masking."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from temporaldata import Data
from torch import nn
from torch_brain.nn import (
    Embedding,
    FeedForward,
    InfiniteVocabEmbedding,
    RotaryCrossAttention,
    RotarySelfAttention,
    RotaryTimeEmbedding,
)
from torch_brain.registry import ModalitySpec

import poyocap_plugin.modalities  # noqa: F401  (spawned workers register on unpickling)
from poyocap_plugin._moved import moved_names
from poyocap_plugin.brainset import ALLEN_CRE_LINES, MASKED_LATENT_READOUT, MOVIE_READOUT
from poyocap_plugin.models.checks import InputToken, check_arguments, check_frame_arguments
from poyocap_plugin.models.ema_teacher import build_teacher, step_teacher
from poyocap_plugin.models.input_tokens import InputTokens
from poyocap_plugin.models.readouts import add_readout, build_readout_specs
from poyocap_plugin.models.tokenizer import tokenize_window
from poyocap_plugin.models.trunk import load_pretrained_trunk, trunk_state_dict
from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.latent_masking import LatentMasking, pack_masked_latents
from poyocap_plugin.nn.readout_heads import ReadoutHeads, copy_spec

__all__ = ["CAPOYO"]

_MOVED = {"MOVIE_FRAME_READOUT": "poyocap_plugin.brainset.MOVIE_READOUT"}  # issue 13
__getattr__ = moved_names(__name__, _MOVED)


class CAPOYO(nn.Module):
    r"""Calcium POYO+ trunk of POYO-CAP (Bae, Azabou, Richards, Cha, ICLR 2026).

    Built from torch_brain 0.1.2's own modules, like ``CalciumPOYOPlus``:

    1. Each (2-photon frame, neuron) value becomes a token at the frame's time, composed
       from the neuron's embedding and its dF/F (``input_token``), plus the session's
       Cre-line embedding with ``cre_line_embedding``.
    2. Latent tokens (``num_latents_per_step`` per ``latent_step`` bin) cross-attend to the
       input tokens (rotary time embeddings), then a processor of ``depth`` self-attention
       blocks refines them.
    3. With ``masking``, the encoded latents are also passed through the *same* processor
       with some of them replaced by a learned mask token; the masked-latent readout
       compares that path's outputs at the masked positions with ``masking.target``.
    4. Output queries (session embedding + task embedding, at the target times)
       cross-attend to the processed latents; a linear head per configured readout maps
       them to predictions, except for the natural-movie frame readout, whose queries
       go through the skip-connection UNet ``frame_decoder`` (stage 2).

    Unlike ``CalciumPOYOPlus`` it builds heads only for the readouts it is given, sizes
    the task embedding by the highest registered modality id (ids are global), and holds
    no module its forward does not use, so every parameter gets a gradient each step, as
    DDP without ``find_unused_parameters`` requires.

    .. note::
        Where the released code departs from the paper, we follow the paper, except where
        ``docs/fidelity.md`` says otherwise and why (e.g. the stage-1 target).

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
        input_token: how a (frame, neuron) value becomes a token of width :math:`D`
            (:class:`~poyocap_plugin.models.input_tokens.InputTokens`): ``"modulated"``
            (default), ``"concat"`` (CalciumPOYOPlus's layout, a long plateau at chance:
            ``docs/stage1.md``) or ``"sum"`` (the paper's unit + value + session +
            token-type embeddings).
        cre_line_embedding: add to every input token an embedding of the session's Cre
            line (``data.subject.cre_line``, one of the 13 Allen lines): the seed's
            ``use_cre_data`` of stage 2. Not part of the trunk.
        masking: latent masking for the stage-1 objective, or None for none.
        frame_decoder: the UNet that turns a decoded query into a movie frame; required
            exactly when ``readouts`` names ``natural_movie_one_image``. It lives outside
            ``model.readout``: train.py's sparse optimizer group cannot take its
            parameters.
        frame_loss: the loss of the frame readout (e.g. a ``CAPFrameLoss`` configured with
            perceptual weights), of the frame decoder's height and width; or None for a
            ``CAPFrameLoss`` with its default weights (perceptual term off) at that size.
            The registry's own frame loss is a stand-in that refuses to run
            (:class:`poyocap_plugin.losses.FrameSizeRequiredLoss`).
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
        cre_line_embedding: bool = False,
        masking: LatentMasking | None = None,
        frame_decoder: SkipUNetFrameDecoder | None = None,
        frame_loss: nn.Module | None = None,
        pretrained_trunk: str | Path | None = None,
    ):
        super().__init__()
        check_arguments(
            sequence_length=sequence_length,
            latent_step=latent_step,
            dim=dim,
            readout_specs=readout_specs,
            readouts=readouts,
            masking=masking,
            input_token=input_token,
        )
        check_frame_arguments(
            dim=dim, readouts=readouts, frame_decoder=frame_decoder, frame_loss=frame_loss
        )
        self.sequence_length = float(sequence_length)
        self.latent_step = float(latent_step)
        self.num_latents_per_step = num_latents_per_step
        self.num_latent_bins = round(sequence_length / latent_step)
        self.dim = dim

        self.input_tokens = InputTokens(input_token, dim, emb_init_scale)
        self.unit_emb = InfiniteVocabEmbedding(
            self.input_tokens.unit_dim, init_scale=emb_init_scale
        )
        self.session_emb = InfiniteVocabEmbedding(dim, init_scale=emb_init_scale)
        self.cre_line_emb = (
            Embedding(len(ALLEN_CRE_LINES), dim, init_scale=emb_init_scale)
            if cre_line_embedding
            else None
        )
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

        head_specs, headless_specs = build_readout_specs(
            readout_specs, readouts, frame_decoder=frame_decoder, frame_loss=frame_loss
        )
        if masking is not None:
            spec = readout_specs[MASKED_LATENT_READOUT]
            headless_specs[MASKED_LATENT_READOUT] = copy_spec(spec, spec.loss_fn)
            self.num_masked = masking.num_masked(
                num_bins=self.num_latent_bins, num_latents_per_bin=num_latents_per_step
            )
        self.masking = masking
        self.frame_decoder = frame_decoder
        self.readout = ReadoutHeads(dim=dim, head_specs=head_specs, headless_specs=headless_specs)

        if pretrained_trunk is not None:
            self.load_pretrained_trunk(pretrained_trunk)
        self.teacher = None
        if masking is not None and masking.target == "ema":
            # Frozen copies, updated by step_teacher (see models/ema_teacher.py).
            self.teacher = build_teacher(self)
            self.register_buffer("teacher_steps", torch.zeros((), dtype=torch.long))

    def _check_vocabularies(self) -> None:
        for name, embedding in (("unit_emb", self.unit_emb), ("session_emb", self.session_emb)):
            if embedding.is_lazy():
                raise ValueError(
                    f"{name} has no vocabulary yet: call model.{name}.initialize_vocab(ids)"
                )

    def _embed_inputs(self, unit_index, values, session_index, cre_line_index) -> torch.Tensor:
        if self.cre_line_emb is not None and cre_line_index is None:
            raise ValueError("model.cre_line_embedding is on: forward needs input_cre_line_index")
        return self.input_tokens(
            self.unit_emb(unit_index),
            values,
            session=None if session_index is None else self.session_emb(session_index),
            per_sample=None if self.cre_line_emb is None else self.cre_line_emb(cre_line_index),
        )

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

    def encode(
        self,
        *,
        input_unit_index: torch.Tensor,
        input_timestamps: torch.Tensor,
        input_values: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        input_session_index: torch.Tensor | None = None,
        input_cre_line_index: torch.Tensor | None = None,
        latent_index: torch.Tensor,
        latent_timestamps: torch.Tensor,
    ) -> torch.Tensor:
        r"""The processed latents of a batch, without masking or readouts (for probes).

        Args:
            input_unit_index, input_timestamps, input_values, input_mask, input_session_index,
                input_cre_line_index, latent_index, latent_timestamps: as in :meth:`forward`.

        Returns:
            Processed latents of shape :math:`(B, N_{latent}, D)`.
        """
        self._check_vocabularies()
        latent_timestamp_emb = self.rotary_emb(latent_timestamps)
        encoded = self._encode(
            self,
            self.latent_emb(latent_index),
            self._embed_inputs(
                input_unit_index, input_values, input_session_index, input_cre_line_index
            ),
            latent_timestamp_emb,
            self.rotary_emb(input_timestamps),
            input_mask,
        )
        return self._process(self.proc_layers, encoded, latent_timestamp_emb)

    def forward(
        self,
        *,
        input_unit_index: torch.Tensor,
        input_timestamps: torch.Tensor,
        input_values: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        input_session_index: torch.Tensor | None = None,
        input_cre_line_index: torch.Tensor | None = None,
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
            input_session_index: each window's session vocabulary index, :math:`(B,)`;
                needed by ``input_token="sum"``.
            input_cre_line_index: each window's Cre line (index in ``ALLEN_CRE_LINES``),
                :math:`(B,)`; needed with ``cre_line_embedding``.
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
            :math:`(B \cdot N_{mask}, 5D)` (the blocks of ``MASKED_LATENT_BLOCKS``) for the
            masked-latent readout; or, with ``unpack_output``, a list of such dicts,
            one per sample.
        """
        self._check_vocabularies()
        if self.teacher is not None and self.training and torch.is_grad_enabled():
            step_teacher(self)
        inputs = self._embed_inputs(
            input_unit_index, input_values, input_session_index, input_cre_line_index
        )
        input_timestamp_emb = self.rotary_emb(input_timestamps)
        latent_timestamp_emb = self.rotary_emb(latent_timestamps)
        latent_id_emb = self.latent_emb(latent_index)
        encoder_inputs = (
            latent_id_emb,
            inputs,
            latent_timestamp_emb,
            input_timestamp_emb,
            input_mask,
        )
        encoded = self._encode(self, *encoder_inputs)
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
            is_frame = output_decoder_index == self.readout.readout_specs[MOVIE_READOUT].id
            # flattened: torch_brain's stitcher pools only 1-D and 2-D values
            frames = self.frame_decoder(queries[is_frame]).flatten(1)
            add_readout(output, MOVIE_READOUT, frames, sample_index=torch.where(is_frame)[0])

        if self.masking is not None:
            if latent_mask is None:
                raise ValueError("model.masking is set, so forward needs latent_mask")
            reconstructed = self._process(
                self.proc_layers,
                self.masking(encoded, latent_mask, latent_id_emb),
                latent_timestamp_emb,
            )
            target = processed
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_encoded = self._encode(self.teacher, *encoder_inputs)
                    target = self._process(
                        self.teacher.proc_layers, teacher_encoded, latent_timestamp_emb
                    )
            elif self.masking.target == "input":
                target = self.masking.input_target(
                    input_unit_index=input_unit_index,
                    input_values=input_values,
                    input_timestamps=input_timestamps,
                    input_mask=input_mask,
                    latent_timestamps=latent_timestamps,
                    num_latents_per_bin=self.num_latents_per_step,
                    num_units=self.unit_emb.weight.shape[0],
                )
            pairs = pack_masked_latents(  # (B, N_mask, 5D): the blocks of MASKED_LATENT_BLOCKS
                reconstructed,
                self.masking.reference(target),
                latent_mask,
                num_masked=self.num_masked,
                num_bins=self.num_latent_bins,
                num_latents_per_bin=self.num_latents_per_step,
                recording=output_session_index[:, 0],
            )
            sample_index = torch.arange(len(pairs), device=pairs.device)
            add_readout(
                output,
                MASKED_LATENT_READOUT,
                pairs.flatten(0, 1),
                sample_index=sample_index.repeat_interleave(pairs.shape[1]),
            )
        return output

    def tokenize(self, data: Data) -> dict:
        """One window's inputs and targets (the trainer's last transform): ``tokenize_window``."""
        return tokenize_window(self, data)

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """What stage 2 takes over from stage 1: :func:`~.trunk.trunk_state_dict`."""
        return trunk_state_dict(self)

    def load_pretrained_trunk(self, path: str | Path) -> None:
        """Load the trunk from a stage-1 checkpoint: :func:`~.trunk.load_pretrained_trunk`."""
        load_pretrained_trunk(self, path)
