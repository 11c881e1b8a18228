"""Simulated Allen Brain Observatory Visual Coding 2-photon sessions, as Allen NWB files.

The files follow the 2016 ophys NWB layout that allensdk 2.16.2 reads, so the
``allen_brain_observatory_calcium`` brainsets pipeline processes them exactly like downloaded
ones. The neurons reproduce the phenomenon of POYO-CAP (Bae et al., ICLR 2026): the
predictable Cre lines (Sst, Vip, Pvalb, Ntsr1) fire densely, with low skewness and kurtosis,
the others sparsely, with heavy tails; all are tuned to the drifting gratings and respond to
natural movie one through receptive fields.
"""

from poyocap_plugin.workflow.simulate.movie_template import (
    NM1_HEIGHT_PX,
    NM1_N_FRAMES,
    NM1_WIDTH_PX,
    natural_movie_one_template,
)
from poyocap_plugin.workflow.simulate.neurons import CRE_LINES, PREDICTABLE_CRE_LINES, UnitTuning
from poyocap_plugin.workflow.simulate.session import (
    BREAKAGES,
    SAMPLING_RATE_HZ,
    SimulatedSession,
    nwb_path,
    simulate_session,
    simulate_sessions,
)
from poyocap_plugin.workflow.simulate.timeline import (
    DG_DIRECTIONS_DEG,
    DG_TEMPORAL_FREQUENCIES_HZ,
    SESSION_TYPES,
    SessionLayout,
)

__all__ = [
    "BREAKAGES",
    "CRE_LINES",
    "DG_DIRECTIONS_DEG",
    "DG_TEMPORAL_FREQUENCIES_HZ",
    "NM1_HEIGHT_PX",
    "NM1_N_FRAMES",
    "NM1_WIDTH_PX",
    "PREDICTABLE_CRE_LINES",
    "SAMPLING_RATE_HZ",
    "SESSION_TYPES",
    "SessionLayout",
    "SimulatedSession",
    "UnitTuning",
    "natural_movie_one_template",
    "nwb_path",
    "simulate_session",
    "simulate_sessions",
]
