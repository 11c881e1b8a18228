"""Every shipped config composes on the stock trainer's search path and instantiates."""

import inspect
from importlib import resources
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch_brain
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch_brain.data import Dataset
from torch_brain.transforms import UnitDropout

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.arms import stage_command
from poyocap_plugin.workflow.datasets import write_dataset_configs
from poyocap_plugin.workflow.settings import CurriculumSettings

CONFIGS = Path(str(resources.files("poyocap_plugin") / "configs"))
PRIMARY = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))


@pytest.fixture
def stock_config_dir():
    train_py = trainer.find_trainer()
    if train_py is None:
        pytest.fail("The stock trainer is not cached: run `poyocap trainer` first")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train_py.parent / "configs"), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def test_configs_exist():
    assert "poyocap_smoke" in PRIMARY and MODELS and DATASETS


@pytest.fixture(scope="module")
def curriculum_configs(curriculum_data_root, tmp_path_factory) -> Path:
    """The curriculum's dataset configs, as `poyocap datasets` writes them."""
    out = tmp_path_factory.mktemp("curriculum_configs")
    write_dataset_configs(curriculum_data_root, out)
    return out


def compose_primary(name: str, data_root: Path, configs: Path, *overrides: str):
    """A primary config, with the one documented override that points the stage configs at
    the partitions."""
    searchpath = f"hydra.searchpath=[file://{configs}]"
    return compose(config_name=name, overrides=[f"data_root={data_root}", searchpath, *overrides])


@pytest.mark.parametrize("name", PRIMARY)
def test_primary_config_composes_and_instantiates(
    name, stock_config_dir, curriculum_data_root, curriculum_configs
):
    cfg = compose_primary(name, curriculum_data_root, curriculum_configs)
    assert cfg.wandb.enable is False  # nothing requires an account or network
    model = hydra.utils.instantiate(cfg.model, readout_specs=torch_brain.MODALITY_REGISTRY)
    assert isinstance(model.sequence_length, float)
    for key in ("train_transforms", "eval_transforms"):
        for transform in hydra.utils.instantiate(cfg[key]):
            assert callable(transform)
    dataset = Dataset(root=cfg.data_root, config=cfg.dataset, split="train")
    assert dataset.get_session_ids()
    for config in dataset.get_recording_config_dict().values():
        for readout in config["multitask_readout"]:
            assert readout["readout_id"] in torch_brain.MODALITY_REGISTRY
            for metric in readout["metrics"]:
                built = hydra.utils.instantiate(metric["metric"])
                if readout["readout_id"] == MOVIE_READOUT:  # scores the frames decoded
                    decoder = cfg.model.frame_decoder
                    assert (built.height, built.width) == (decoder.height, decoder.width)


@pytest.mark.parametrize("name", PRIMARY)
def test_unit_dropout_repeats_with_the_seed(
    name, stock_config_dir, curriculum_data_root, curriculum_configs
):
    # torch_brain's UnitDropout draws how many units to keep from its own generator,
    # seeded from OS entropy unless the config gives it the run's seed
    def kept_counts(seed):
        cfg = compose_primary(name, curriculum_data_root, curriculum_configs, f"seed={seed}")
        transforms = hydra.utils.instantiate(cfg.train_transforms)
        (dropout,) = [t for t in transforms if isinstance(t, UnitDropout)]
        return [dropout.distribution.sample(300) for _ in range(50)]

    assert kept_counts(3) == kept_counts(3)
    assert kept_counts(3) != kept_counts(4)


@pytest.mark.parametrize("name", MODELS)
def test_model_config_keys_are_constructor_arguments(name):
    node = OmegaConf.load(CONFIGS / "model" / f"{name}.yaml")
    target = hydra.utils.get_class(node._target_)
    parameters = inspect.signature(target).parameters
    unknown = set(node) - {"_target_"} - set(parameters)
    assert not unknown, f"model/{name}.yaml has keys {unknown} that {target} does not take"


@pytest.mark.parametrize(("released", "median"), [(False, 123), (True, 63)])
def test_unit_dropout_keeps_as_many_units_as_the_released_code_under_the_paper_preset(
    released, median
):
    # the released settings (peak 50, M 50) keep a median ~63 units of a large session,
    # 5-95 % range ~20-254 (shared/reference/poyocap_method.md 2.9); torch_brain's default
    # peak and M, the shipped config's, keep ~123
    settings = CurriculumSettings.preset("paper", perceptual=False, released_unit_dropout=released)
    command = stage_command(
        "pretrain",
        variant="poyocap",
        data_root=Path("/d"),
        config_dir=Path("/c"),
        log_dir=Path("/l"),
        settings=settings,
        seed=0,
        trunk=None,
    )
    node = OmegaConf.load(CONFIGS / "base" / "poyocap_stage.yaml").unit_dropout
    changes = dict(
        a.removeprefix("+unit_dropout.").split("=") for a in command if "unit_dropout" in a
    )
    dropout = hydra.utils.instantiate(node, seed=0, **{k: float(v) for k, v in changes.items()})
    kept = np.array([dropout.distribution.sample(1000) for _ in range(20_000)])
    assert abs(np.median(kept) - median) <= 6
    if released:
        assert 15 <= np.percentile(kept, 5) and np.percentile(kept, 95) <= 265
