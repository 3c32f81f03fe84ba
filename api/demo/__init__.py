"""The demo and its sample world: the `commitledger demo` story (`story`), the data that
`serve --demo` starts with (`serve_data`), sample applicants (`samples`) and a sample department
data service (`sample_service` over `sample_data`). Nothing in production imports this package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from api.demo.sample_data import (
        LAST_PAID_MONTH,
        MAIN_SOURCES,
        SOURCES,
        Planted,
        employer_uscc_for,
        planted,
        records,
    )
    from api.demo.sample_service import (
        MAX_BODY_BYTES,
        Faults,
        Signer,
        create_app,
        published_key,
        running,
        running_apart,
    )
    from api.demo.samples import DEMO_MATTERS, sample_commitment, sample_commitments
    from api.demo.serve_data import (
        DEMO_TOKENS_FILE,
        demo_refusal,
        demo_tokens,
        load_demo,
        prepare_keys,
    )
    from api.demo.story import VERIFY_ON, run_demo
    from api.demo.story_parts import documents_with_every_case
    from api.demo.story_print import case_story

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "case_story": "api.demo.story_print",
    "create_app": "api.demo.sample_service",
    "demo_refusal": "api.demo.serve_data",
    "demo_tokens": "api.demo.serve_data",
    "DEMO_TOKENS_FILE": "api.demo.serve_data",
    "documents_with_every_case": "api.demo.story_parts",
    "employer_uscc_for": "api.demo.sample_data",
    "Faults": "api.demo.sample_service",
    "LAST_PAID_MONTH": "api.demo.sample_data",
    "load_demo": "api.demo.serve_data",
    "MAIN_SOURCES": "api.demo.sample_data",
    "MAX_BODY_BYTES": "api.demo.sample_service",
    "Planted": "api.demo.sample_data",
    "planted": "api.demo.sample_data",
    "prepare_keys": "api.demo.serve_data",
    "published_key": "api.demo.sample_service",
    "records": "api.demo.sample_data",
    "run_demo": "api.demo.story",
    "running": "api.demo.sample_service",
    "running_apart": "api.demo.sample_service",
    "sample_commitments": "api.demo.samples",
    "sample_commitment": "api.demo.samples",
    "DEMO_MATTERS": "api.demo.samples",
    "Signer": "api.demo.sample_service",
    "SOURCES": "api.demo.sample_data",
    "VERIFY_ON": "api.demo.story",
}

__all__ = [
    "DEMO_MATTERS",
    "DEMO_TOKENS_FILE",
    "LAST_PAID_MONTH",
    "MAIN_SOURCES",
    "MAX_BODY_BYTES",
    "SOURCES",
    "VERIFY_ON",
    "Faults",
    "Planted",
    "Signer",
    "case_story",
    "create_app",
    "demo_refusal",
    "demo_tokens",
    "documents_with_every_case",
    "employer_uscc_for",
    "load_demo",
    "planted",
    "prepare_keys",
    "published_key",
    "records",
    "run_demo",
    "running",
    "running_apart",
    "sample_commitment",
    "sample_commitments",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
