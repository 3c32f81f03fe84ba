"""Each package's __init__.py names its public surface, loaded on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "ledger",
    "verifier",
    "verifier.engine",
    "verifier.records",
    "verifier.feed",
    "api.service",
    "api.demo",
    "api.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_to_its_defining_module(name: str) -> None:
    package = importlib.import_module(name)
    surface = package._SURFACE
    assert sorted(surface) == sorted(package.__all__)
    for public, module_name in surface.items():
        module = importlib.import_module(module_name)
        assert getattr(package, public) is getattr(module, public), public


@pytest.mark.parametrize("name", PACKAGES)
def test_an_unknown_name_is_an_attribute_error(name: str) -> None:
    package = importlib.import_module(name)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_importing_a_light_name_does_not_import_the_chain_or_the_service() -> None:
    probe = (
        "import sys\n"
        "from ledger import keccak256, canonical_bytes\n"
        "import verifier, api.service, api.cli\n"
        "heavy = [m for m in ('web3', 'fastapi', 'sqlalchemy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
