"""The paper's analyses as tools: loss-landscape roughness, Fisher information, scaling.

POYO-CAP (Bae et al., ICLR 2026) argues for its curriculum with a loss-landscape figure
(Fig. 2), Fisher information per data point (Table 2) and scaling with model size. Each is
a library function here and a ``poyocap analyze`` command; docs/analyses.md gives the
definitions chosen where the paper is silent.

Modules: :mod:`.roughness` (roughness of a loss surface on a grid), :mod:`.objective` (the
stage-1 loss of a checkpoint on held-out windows), :mod:`.populations` (stage 1 on each
population, or given checkpoints), :mod:`.landscape` (the loss surface over two
directions), :mod:`.fisher` (Fisher information per data point), :mod:`.model_sizes` (the
model-size configs and their parameter counts), :mod:`.scaling` (the sweep over model
sizes). Where each writes its result: :mod:`poyocap_plugin.workflow.analysis_results`.
"""

from poyocap_plugin.workflow.analyses.fisher import FisherResult, run_fisher
from poyocap_plugin.workflow.analyses.landscape import LandscapeResult, run_landscape
from poyocap_plugin.workflow.analyses.populations import POPULATIONS
from poyocap_plugin.workflow.analyses.roughness import laplacian_roughness, local_minima
from poyocap_plugin.workflow.analyses.scaling import ScalingResult, run_scaling

__all__ = [
    "POPULATIONS",
    "FisherResult",
    "LandscapeResult",
    "ScalingResult",
    "laplacian_roughness",
    "local_minima",
    "run_fisher",
    "run_landscape",
    "run_scaling",
]
