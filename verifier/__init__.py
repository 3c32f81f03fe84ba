"""The verifier: the matter catalog and sample applicants (verification engine to come).

Imports point down only: verifier uses ledger, never api.
"""

from .catalog import Catalog, ClaimSpec, Matter, Notice, default_catalog, load_catalog
from .samples import sample_commitment, sample_commitments

__all__ = [
    "Catalog",
    "ClaimSpec",
    "Matter",
    "Notice",
    "default_catalog",
    "load_catalog",
    "sample_commitment",
    "sample_commitments",
]
