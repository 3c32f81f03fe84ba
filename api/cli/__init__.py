"""The `commitledger` command line: one module per group of commands; `api.cli.main:main` is
the console script's entry point (a function named like its module, so not in the surface)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from api.cli.config import missing_for_serving, readme_with_table, settings_table
    from api.cli.feed import report_keys, status_json
    from api.cli.main import app
    from api.cli.refusals import SENTENCES, explain
    from api.cli.serving import uvicorn_options
    from api.cli.store import catalog_departments, in_data_dir
    from api.cli.verify import breach_row, breach_table, progress_bar, summary_json, terminal_safe

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "app": "api.cli.main",
    "breach_row": "api.cli.verify",
    "breach_table": "api.cli.verify",
    "catalog_departments": "api.cli.store",
    "explain": "api.cli.refusals",
    "in_data_dir": "api.cli.store",
    "missing_for_serving": "api.cli.config",
    "progress_bar": "api.cli.verify",
    "readme_with_table": "api.cli.config",
    "report_keys": "api.cli.feed",
    "SENTENCES": "api.cli.refusals",
    "settings_table": "api.cli.config",
    "status_json": "api.cli.feed",
    "summary_json": "api.cli.verify",
    "terminal_safe": "api.cli.verify",
    "uvicorn_options": "api.cli.serving",
}

__all__ = [
    "SENTENCES",
    "app",
    "breach_row",
    "breach_table",
    "catalog_departments",
    "explain",
    "in_data_dir",
    "missing_for_serving",
    "progress_bar",
    "readme_with_table",
    "report_keys",
    "settings_table",
    "status_json",
    "summary_json",
    "terminal_safe",
    "uvicorn_options",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
