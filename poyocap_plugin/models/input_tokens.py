"""How CAPOYO turns each (2-photon frame, neuron) dF/F value into an input token of width D."""

from __future__ import annotations

import torch
from torch import nn

from poyocap_plugin.models.checks import InputToken

__all__ = ["InputTokens"]


class InputTokens(nn.Module):
    r"""The input-token composition of :class:`~poyocap_plugin.models.CAPOYO`.

    Given each token's unit embedding :math:`u` and value :math:`v` (z-scored dF/F):

    - ``"modulated"``: :math:`[v\,u ; u]`, :math:`u` of width :math:`D/2`, so that an
      average over tokens already carries *which* neurons were active;
    - ``"concat"``: :math:`[W v + b ; u]`, :math:`u` of width :math:`D/2`
      (``CalciumPOYOPlus``'s layout);
    - ``"sum"``: :math:`u + (W v + b) + s + t`, all of width :math:`D`: the paper's unit,
      value, session (:math:`s`, the window's session embedding) and token-type
      (:math:`t`, one learned vector: there is one kind of token) embeddings.

    Whatever the composition, ``per_sample`` (e.g. the Cre-line embedding of stage 2) is
    added to every token of its sample.

    Args:
        composition: One of :data:`~poyocap_plugin.models.checks.InputToken`.
        dim: Token width :math:`D` (even).
        init_scale: Standard deviation of the embeddings' initialisation.
    """

    def __init__(self, composition: InputToken, dim: int, init_scale: float) -> None:
        super().__init__()
        self.composition = composition
        self.unit_dim = dim if composition == "sum" else dim // 2
        """Width of the unit embedding the composition takes."""
        if composition in ("concat", "sum"):
            self.value_map = nn.Linear(1, self.unit_dim)
            nn.init.trunc_normal_(self.value_map.weight, 0, init_scale)
            nn.init.zeros_(self.value_map.bias)
        if composition == "sum":
            self.token_type = nn.Parameter(torch.empty(dim))
            nn.init.trunc_normal_(self.token_type, 0, init_scale)

    @property
    def uses_session(self) -> bool:
        """Whether the tokens hold the window's session embedding (``"sum"``)."""
        return self.composition == "sum"

    def forward(
        self,
        unit: torch.Tensor,
        values: torch.Tensor,
        *,
        session: torch.Tensor | None = None,
        per_sample: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""The input tokens, :math:`(B, N_{in}, D)`.

        Args:
            unit: Unit embeddings, :math:`(B, N_{in}, \text{unit\_dim})`.
            values: dF/F, :math:`(B, N_{in}, 1)`.
            session: The window's session embedding, :math:`(B, D)`; required by ``"sum"``,
                unused by the others.
            per_sample: Added to every token of a sample, :math:`(B, D)`, or None.
        """
        if self.composition == "modulated":
            tokens = torch.cat((values * unit, unit), dim=-1)
        elif self.composition == "concat":
            tokens = torch.cat((self.value_map(values), unit), dim=-1)
        else:
            if session is None:
                raise ValueError('input_token="sum" needs the session embedding of each window')
            tokens = unit + self.value_map(values) + self.token_type + session[:, None]
        if per_sample is not None:
            tokens = tokens + per_sample[:, None]
        return tokens
