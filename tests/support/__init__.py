"""Helpers the tests share: worlds, fixtures' builders, CLI drivers. Test modules import from
here (never from one another or from conftest); nothing here is a test."""
