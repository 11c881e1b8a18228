"""The linear probe of a stage-1 trunk: drifting-grating direction from frozen latents.

The standard self-supervised-learning evaluation: freeze the trunk of a CAPOYO stage-1
checkpoint, turn each drifting-grating trial into one feature vector (the mean of its window's
processed latents, or all of them concatenated: :data:`Pooling`), fit a logistic
regression on the training split's trials and score it on the test split's. The same is
done for the same architecture at random initialisation and for the trial's mean dF/F of
the neurons the model sees, so the pretrained number comes with its baselines.

.. note::
    POYO-CAP's stage 1 (``poyocap_pretrain``) adds the drifting-grating cross-entropy,
    weighted 0.01, to the masked-latent objective, on the training split's trials. The
    pretrained trunk has therefore seen training labels; the test trials stay held out.

Modules: :mod:`.features` (the trunks and each trial's feature vectors), :mod:`.pooling`
(a window's latents to one vector), :mod:`.classifier`
(the logistic regression), :mod:`.result` (the records and ``probe.json``),
:mod:`.evaluation` (:func:`probe_checkpoint`, which ties them together).
"""

from poyocap_plugin.workflow.probe.classifier import linear_probe_accuracy
from poyocap_plugin.workflow.probe.evaluation import probe_checkpoint
from poyocap_plugin.workflow.probe.pooling import POOLINGS, Pooling
from poyocap_plugin.workflow.probe.result import PROBE_FEATURES, ProbeResult, RecordingProbe

__all__ = [
    "POOLINGS",
    "PROBE_FEATURES",
    "Pooling",
    "ProbeResult",
    "RecordingProbe",
    "linear_probe_accuracy",
    "probe_checkpoint",
]
