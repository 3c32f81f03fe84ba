"""The Commitment Ledger HTTP service (FastAPI): departments, auditors, the public.

`create_app(settings)` builds the app; `commitledger serve` runs it on loopback.
"""

from api.service.app import create_app
from api.service.context import ChainLink, Deployment, ServiceContext
from api.service.problems import PROBLEM_BASE, ProblemError, ProblemType
from api.service.settings import Settings
from api.service.tokens import IssuedToken, Principal, TokenStore

__all__ = [
    "PROBLEM_BASE",
    "ChainLink",
    "Deployment",
    "IssuedToken",
    "Principal",
    "ProblemError",
    "ProblemType",
    "ServiceContext",
    "Settings",
    "TokenStore",
    "create_app",
]
