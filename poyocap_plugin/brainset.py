"""Facts of the Allen Brain Observatory calcium brainset, each defined once.

The plugin's pipeline (``brainsets_pipelines/allen_brain_observatory_calcium``) runs in
brainsets' isolated environment and cannot import the plugin; it keeps its own copies of
the facts it needs, and ``tests/test_brainset.py`` checks them against these.
"""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = [
    "ALLEN_CRE_LINES",
    "BRAINSET_ID",
    "DG_READOUT",
    "INHIBITORY_CRE_LINES",
    "MASKED_LATENT_READOUT",
    "MOVIE_READOUT",
    "MOVIE_WINDOW_S",
    "NWB_SUBDIR",
    "PAPER_KURTOSIS_THRESHOLD",
    "PAPER_PREDICTABLE_CRE_LINES",
    "PAPER_SKEWNESS_THRESHOLD",
    "TEMPLATE_RELATIVE_PATH",
]

BRAINSET_ID = "allen_brain_observatory_calcium"
"""The brainset's folder under the raw and processed roots (= the pipeline's directory)."""
NWB_SUBDIR = "ophys_experiment_data"
"""Where allensdk's BrainObservatoryCache keeps experiment files, relative to its manifest."""
TEMPLATE_RELATIVE_PATH = PurePosixPath(BRAINSET_ID, "templates", "natural_movie_one.h5")
"""Where the pipeline stores the NM1 template, relative to the processed-data root."""

ALLEN_CRE_LINES = (
    "Cux2-CreERT2",
    "Emx1-IRES-Cre",
    "Fezf2-CreER",
    "Nr5a1-Cre",
    "Ntsr1-Cre_GN220",
    "Pvalb-IRES-Cre",
    "Rbp4-Cre_KL100",
    "Rorb-IRES2-Cre",
    "Scnn1a-Tg3-Cre",
    "Slc17a7-IRES2-Cre",
    "Sst-IRES-Cre",
    "Tlx3-Cre_PL56",
    "Vip-IRES-Cre",
)
"""The 13 Cre lines of the Allen Brain Observatory 2-photon data, spelled as allensdk does."""
PAPER_PREDICTABLE_CRE_LINES = ("Sst-IRES-Cre", "Vip-IRES-Cre", "Pvalb-IRES-Cre", "Ntsr1-Cre_GN220")
"""The paper's predictable lines (pretraining); the other nine are for finetuning."""
INHIBITORY_CRE_LINES = ("Sst-IRES-Cre", "Vip-IRES-Cre", "Pvalb-IRES-Cre")
"""Pretraining lines of the inhibitory-only SSL ablation (Table 3)."""

PAPER_SKEWNESS_THRESHOLD = 3.51
"""Skewness of dF/F (dimensionless) at or below which a neuron is predictable (paper)."""
PAPER_KURTOSIS_THRESHOLD = 22.62
"""Kurtosis of dF/F (dimensionless) at or below which a neuron is predictable (paper)."""

DG_READOUT = "drifting_gratings_orientation"
"""torch_brain's built-in 8-class drift-direction readout."""
MOVIE_READOUT = "natural_movie_one_image"
"""The plugin's natural-movie-one frame-reconstruction readout."""
MASKED_LATENT_READOUT = "masked_latent_reconstruction"
"""The plugin's stage-1 masked-latent readout."""

MOVIE_WINDOW_S = 0.033
"""Stage 2's window (s): one 2-photon frame; the model's ``sequence_length`` equals it."""
