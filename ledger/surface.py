"""Lazy public surfaces: a package's __init__.py names what others may import (PEP 562).

Each name is imported from its module on first use, so that importing one light name (say
`keccak256`) does not import web3, SQLAlchemy or FastAPI with the rest of the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, surface: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: each name of `surface` (name -> defining module)
    loaded on first use and kept; any other name an AttributeError, as for a plain module."""

    def attribute(name: str) -> Any:
        module = surface.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return attribute
