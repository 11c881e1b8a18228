import importlib
import multiprocessing

import pytest
import torch_brain
from torch_brain.registry import DataType

import poyocap_plugin.modalities as modalities


def test_plugin_modalities_follow_the_builtins_in_fixed_order(isolated_registry):
    names = modalities.plugin_modality_names()
    ids = [isolated_registry.MODALITY_REGISTRY[name].id for name in names]
    builtin_ids = [
        spec.id for name, spec in isolated_registry.MODALITY_REGISTRY.items() if name not in names
    ]
    assert ids == list(range(max(builtin_ids) + 1, max(builtin_ids) + 1 + len(names)))
    for name, id_ in zip(names, ids, strict=True):
        assert isolated_registry._ID_TO_MODALITY[id_] == name
        assert torch_brain.get_modality_by_id(id_) == name


def test_register_all_twice_changes_nothing(isolated_registry):
    before = dict(isolated_registry.MODALITY_REGISTRY)
    first = modalities.register_all()
    second = modalities.register_all()
    importlib.reload(modalities)  # re-running the module's registration
    assert first == second
    assert dict(isolated_registry.MODALITY_REGISTRY) == before
    assert len(isolated_registry._ID_TO_MODALITY) == len(before)


def test_conflicting_spec_raises_and_shows_both(isolated_registry):
    name = modalities.plugin_modality_names()[0]
    del isolated_registry._ID_TO_MODALITY[isolated_registry.MODALITY_REGISTRY.pop(name).id]
    torch_brain.register_modality(
        name,
        dim=7,
        type=DataType.MULTINOMIAL,
        timestamp_key="other.timestamps",
        value_key="other.values",
        loss_fn=torch_brain.nn.loss.CrossEntropyLoss(),
    )
    with pytest.raises(ValueError, match=rf"{name}.*different spec.*dim=7.*'dim': 1"):
        modalities.register_all()


def _ids_in_fresh_interpreter(queue):
    import torch_brain

    import poyocap_plugin.modalities  # noqa: F401

    queue.put({name: spec.id for name, spec in torch_brain.MODALITY_REGISTRY.items()})


def test_spawned_process_registers_the_same_ids():
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_ids_in_fresh_interpreter, args=(queue,))
    process.start()
    child = queue.get(timeout=120)
    process.join(timeout=60)
    assert child == {name: spec.id for name, spec in torch_brain.MODALITY_REGISTRY.items()}
    assert set(modalities.plugin_modality_names()) <= set(child)
