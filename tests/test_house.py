"""The house: imports flow one way without circles, modules stay small, moves keep old runs.

``tests/data/stage1_before_issue13.ckpt`` is a stage-1 checkpoint in train.py's format
(``hyper_parameters`` = the run's composed config, ``state_dict`` = ``model.``-prefixed
weights; ``capoyo_48k``, ``poyocap_pretrain``, 4 units, 1 session, torch seed 0), written
with the code of commit 386ba69, before the plugin and the workflow were moved apart.
"""

import ast
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch_brain.registry import MODALITY_REGISTRY

import poyocap_plugin
from poyocap_plugin.models import CAPOYO
from poyocap_plugin.workflow.checkpoints import load_train_checkpoint

PACKAGE = Path(poyocap_plugin.__file__).parent
OLD_CHECKPOINT = Path(__file__).parent / "data" / "stage1_before_issue13.ckpt"
MAX_LINES = 420  # "~400" (STYLE 3.1)
MAX_CLI_LINES = 270  # "~250": one command group per module


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every package module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "poyocap_plugin":
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_package():
    cycle = _find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_plugin_never_imports_the_workflow():
    upward = {
        name: sorted(m for m in deps if m.startswith("poyocap_plugin.workflow"))
        for name, deps in _graph().items()
        if not name.startswith("poyocap_plugin.workflow")
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_modules_stay_small():
    too_long = {}
    for name, path in _modules().items():
        limit = MAX_CLI_LINES if ".workflow.cli" in name else MAX_LINES
        lines = len(path.read_text().splitlines())
        if lines > limit:
            too_long[name] = lines
    assert too_long == {}


def test_the_init_only_sets_the_version():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    assigned = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
    assert assigned == ["__version__"]
    assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


@pytest.mark.usefixtures("isolated_registry")
def test_a_stage1_checkpoint_from_before_the_move_still_loads():
    """Its config's ``_target_`` paths resolve, and its trunk loads into a stage-2 model."""
    import poyocap_plugin.modalities  # noqa: F401

    run = load_train_checkpoint(OLD_CHECKPOINT)
    model = run.load_model()  # the model its own config describes, with its weights
    assert isinstance(model, CAPOYO)
    for key in ("train_transforms", "eval_transforms"):
        assert len(hydra.utils.instantiate(run.config[key])) == len(run.config[key])

    stage2_config = OmegaConf.merge(
        run.config.model, {"masking": None, "readouts": {"drifting_gratings_orientation": 1.0}}
    )
    stage2 = hydra.utils.instantiate(stage2_config, readout_specs=MODALITY_REGISTRY)
    stage2.load_pretrained_trunk(OLD_CHECKPOINT)
    trunk = stage2.trunk_state_dict()
    assert len(trunk) > 10
    for key, value in trunk.items():
        if key == "task_emb.weight":  # rows of modalities registered since then are new
            value = value[: run.state_dict[key].shape[0]]
        torch.testing.assert_close(value, run.state_dict[key], msg=key)


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("poyocap_plugin.models.capoyo", "MOVIE_FRAME_READOUT", "MOVIE_READOUT"),
        ("poyocap_plugin.movie", "TEMPLATE_RELATIVE_PATH", None),
        ("poyocap_plugin.predictability", "ALLEN_CRE_LINES", None),
        ("poyocap_plugin.predictability", "PAPER_PREDICTABLE_CRE_LINES", None),
    ],
)
def test_a_moved_name_says_where_it_went(old, name, new):
    import importlib

    from poyocap_plugin import brainset

    line = f"from poyocap_plugin.brainset import {new or name}"
    with pytest.raises(ImportError, match=f"{old}.{name} has moved; use: {line}$"):
        getattr(importlib.import_module(old), name)
    assert hasattr(brainset, new or name)
    with pytest.raises(AttributeError, match="has no attribute 'NO_SUCH_NAME'"):
        importlib.import_module(old).NO_SUCH_NAME  # noqa: B018
