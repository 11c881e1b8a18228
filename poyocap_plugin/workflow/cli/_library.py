"""What the commands read from the library: defaults, choices, and errors as click errors.

Each default and choice of the CLI is looked up here, in the signature of the function the
command wraps, in a settings dataclass, or in a ``Literal``, so that it is declared once.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, get_args

import click

__all__ = ["choices_of", "default_of", "field_default", "parameter_choices", "user_errors"]


def default_of(function: Callable[..., Any], name: str) -> Any:
    """The default of ``function``'s parameter ``name``.

    Raises:
        ValueError: If ``function`` has no parameter ``name`` with a default.
    """
    parameter = inspect.signature(function).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise ValueError(f"{function.__qualname__} has no parameter {name!r} with a default")
    return parameter.default


def field_default(cls: type, name: str) -> Any:
    """The default of the dataclass ``cls``'s field ``name`` (from ``dataclasses.fields``).

    Raises:
        ValueError: If ``cls`` has no field ``name`` with a default.
    """
    for field in dataclasses.fields(cls):
        if field.name != name:
            continue
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        break
    raise ValueError(f"{cls.__qualname__} has no field {name!r} with a default")


def choices_of(literal: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` type, in their declared order.

    Raises:
        ValueError: If ``literal`` is not a ``Literal`` of strings.
    """
    values = get_args(literal)
    if not values or not all(isinstance(value, str) for value in values):
        raise ValueError(f"expected a Literal of strings, got {literal!r}")
    return values


def parameter_choices(function: Callable[..., Any], name: str) -> tuple[str, ...]:
    """The values of the ``Literal`` that ``function``'s parameter ``name`` is annotated with."""
    annotation = inspect.signature(function, eval_str=True).parameters[name].annotation
    return choices_of(annotation)


@contextmanager
def user_errors(*types: type[Exception]) -> Iterator[None]:
    """Turn the library's errors of ``types`` into a ``click.ClickException`` (exit code 1).

    The library's messages name the file or argument and the fix; the CLI shows them as they
    are (a KeyError's message without the quotes ``str`` adds).
    """
    try:
        yield
    except types as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise click.ClickException(str(message)) from error
