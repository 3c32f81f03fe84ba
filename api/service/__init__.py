"""The Commitment Ledger HTTP service (FastAPI): departments, auditors, the public.

`create_app(settings)` builds the app; `commitledger serve` runs it on loopback.
"""

from .app import create_app
from .context import ChainLink, Deployment, ServiceContext
from .problems import PROBLEM_BASE, ProblemError, ProblemType
from .settings import Settings
from .tokens import IssuedToken, Principal, TokenStore

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
