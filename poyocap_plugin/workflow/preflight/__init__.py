"""Check a training run's configuration before torch_brain's stock ``train.py`` starts it.

``poyocap train`` hands its Hydra overrides to the unchanged trainer in a child process. A
typo there (an unknown readout, a missing data root, a session that is not on disk, a
checkpoint of another model size) would otherwise surface as a stack trace from deep inside
torch_brain, Lightning or a DataLoader worker, possibly after minutes of set-up. The
preflight composes the same config the trainer will see (the trainer's ``configs/`` as the
primary directory, the plugin's ``pkg://poyocap_plugin.configs`` appended by the Hydra
search-path plugin, the same overrides) and walks the path ``train.py`` takes up to its
first optimizer step, on CPU and in seconds:

1. every mandatory key (``???``) is set and every interpolation resolves;
2. ``data_root`` is a directory, ``ckpt_path`` (when set) a file;
3. each dataset selection names a brainset folder holding ``*.h5`` files and sessions that
   exist (as strings), and each ``multitask_readout`` names a registered modality;
4. the model is instantiated as ``train.py`` does it (``readout_specs=MODALITY_REGISTRY``),
   which checks its readouts, sizes and, for a stage-2 model, the pretrained trunk's shapes;
5. the transforms and metrics are instantiated; torch_brain's ``Dataset`` is built for the
   three splits and every split has sampling intervals;
6. plugin transforms check what they would otherwise find at their first sample: the
   neuron sampler's selection on every recording, the movie template's presence and size;
7. two training windows go through the transforms, the model's tokenizer, ``collate``, the
   forward pass and each readout's ``loss_fn``, as in ``train.py``'s ``training_step``.

Any failure is a :class:`PreflightError` naming the dotted config key, file or value and the
fix. The check never changes the config and never trains.

Modules: :mod:`.command` (the command line and the composed config), :mod:`.config_checks`
(steps 1 to 5), :mod:`.dry_run` (steps 6 and 7, with the :class:`DatasetCheck` protocol the
plugin's transforms implement), :mod:`.check` (the whole preflight), :mod:`.result` (what it
returns or raises).
"""

from poyocap_plugin.workflow.preflight.check import check_config, check_training_run
from poyocap_plugin.workflow.preflight.command import (
    TrainerArgs,
    compose_train_config,
    parse_trainer_args,
)
from poyocap_plugin.workflow.preflight.config_checks import check_dataset_config
from poyocap_plugin.workflow.preflight.dry_run import DatasetCheck
from poyocap_plugin.workflow.preflight.result import PreflightError, PreflightReport

__all__ = [
    "DatasetCheck",
    "PreflightError",
    "PreflightReport",
    "TrainerArgs",
    "check_config",
    "check_dataset_config",
    "check_training_run",
    "compose_train_config",
    "parse_trainer_args",
]
