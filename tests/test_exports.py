"""``resilience.__all__`` lists exactly the public names, and each is documented."""

from __future__ import annotations

import inspect
import types

import resilience


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(resilience).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(resilience.__all__) - {"__version__"} == public
    assert len(resilience.__all__) == len(set(resilience.__all__))


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(resilience.__all__, tuple)
    assert list(resilience.__all__) == sorted(resilience.__all__)


def test_every_public_class_and_function_has_a_docstring() -> None:
    for name in resilience.__all__:
        value = getattr(resilience, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_py_typed_is_shipped() -> None:
    from importlib import resources

    assert resources.files("resilience").joinpath("py.typed").is_file()


def test_types_inside_exported_models_are_exported() -> None:
    """A user can name every model a stats snapshot contains."""
    import typing

    from pydantic import BaseModel

    exported = {getattr(resilience, n) for n in resilience.__all__}

    def classes(annotation: object) -> set[type]:
        found = {annotation} if isinstance(annotation, type) else set()
        for arg in typing.get_args(annotation):
            found |= classes(arg)
        return found

    for name in resilience.__all__:
        model = getattr(resilience, name)
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            continue
        for field in model.model_fields.values():
            for cls in classes(field.annotation):
                if cls.__module__.startswith("resilience"):
                    assert cls in exported, f"{name}.{cls.__name__} is not exported"
