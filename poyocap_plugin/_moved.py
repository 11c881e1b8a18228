"""Public names that moved: importing one from its old module says where it went."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

__all__ = ["moved_names"]


def moved_names(module: str, moves: Mapping[str, str]) -> Callable[[str], NoReturn]:
    """A module ``__getattr__`` that raises ImportError with the new import of a moved name.

    Example::

        __getattr__ = moved_names(__name__, {"OLD": "poyocap_plugin.brainset.NEW"})

    Args:
        module: The old module's ``__name__``.
        moves: Moved name -> its new dotted path (module and name).
    """

    def __getattr__(name: str) -> NoReturn:
        if name in moves:
            new_module, _, new_name = moves[name].rpartition(".")
            raise ImportError(
                f"{module}.{name} has moved; use: from {new_module} import {new_name}"
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
