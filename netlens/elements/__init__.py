"""The element catalog: every row type a prescription can use, registered by name.

Adding an element is adding one class with `@register` in one of the modules below.
"""
from __future__ import annotations

from netlens.elements.base import Beam, Context, Element, Optics, Options, Shape, fmt_shape

ELEMENTS: dict[str, type[Element]] = {}


def register(cls: type[Element]) -> type[Element]:
    ELEMENTS[cls.name] = cls
    return cls


# Importing the modules fills the registry.
from netlens.elements import activations, layers, norms, sequence, shaping  # noqa: E402,F401

__all__ = ["ELEMENTS", "Beam", "Context", "Element", "Optics", "Options", "Shape", "fmt_shape", "register"]
