"""Rewrite the README's settings table from the Settings model (run it after changing one)."""

from __future__ import annotations

import sys
from pathlib import Path

from api.cli import readme_with_table


def main(argv: list[str]) -> int:
    """Rewrite the settings table of the README given (default README.md)."""
    path = Path(argv[0] if argv else "README.md")
    text = path.read_text()
    updated = readme_with_table(text)
    if updated != text:
        path.write_text(updated)
    print(f"{path}: settings table {'updated' if updated != text else 'current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
