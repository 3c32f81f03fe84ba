"""The Commitment Ledger HTTP service (FastAPI): departments, auditors, the public.

`create_app(settings)` builds the app; `commitledger serve` runs it on loopback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from api.service.app import create_app
    from api.service.appeals import (
        appeal_records,
        apply_for_repair,
        decide_objection,
        decide_repair,
        file_objection,
    )
    from api.service.applicant_auth import (
        ApplicantAuth,
        challenge_message,
        is_challenge_hex,
        sign_challenge,
    )
    from api.service.background import BackgroundTasks
    from api.service.context import ChainLink, Deployment, ServiceContext
    from api.service.deps import get_context
    from api.service.engines import department_actions
    from api.service.feed_task import BackgroundFeed
    from api.service.keys import (
        ADMIN_KEY_FILE,
        KEY_FILES,
        AccountRole,
        DepartmentKeys,
        key_unlock,
    )
    from api.service.leased_tasks import (
        FEED_LEASE,
        LIFECYCLE_LEASE,
        NOTICES_LEASE,
        RECONCILE_LEASE,
        anchor_lease,
        feed_sign_lease,
    )
    from api.service.lifecycle_task import lifecycle_departments, run_lifecycles
    from api.service.logs import JsonFormatter, configure_logging
    from api.service.lookup_terms import department_code, identity_fingerprints, matter_code
    from api.service.middleware import BodyLimitMiddleware
    from api.service.notices_task import notice_deliverer
    from api.service.problems import PROBLEM_BASE, ProblemError, ProblemType
    from api.service.ratelimit import RateLimiter
    from api.service.rectifications import (
        decide_rectification,
        file_rectification,
        rectification_records,
    )
    from api.service.settings import Settings, SettingsError, env_names, origins
    from api.service.slow_clients import header_deadline_protocol
    from api.service.tokens import (
        DAY_S,
        FEED_CONSUMER,
        OPERATOR,
        SUPERVISOR,
        TOKEN_PREFIX,
        IssuedToken,
        Principal,
        TokenStore,
        api_tokens,
    )

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "appeal_records": "api.service.appeals",
    "apply_for_repair": "api.service.appeals",
    "decide_objection": "api.service.appeals",
    "decide_repair": "api.service.appeals",
    "file_objection": "api.service.appeals",
    "decide_rectification": "api.service.rectifications",
    "file_rectification": "api.service.rectifications",
    "rectification_records": "api.service.rectifications",
    "AccountRole": "api.service.keys",
    "ApplicantAuth": "api.service.applicant_auth",
    "challenge_message": "api.service.applicant_auth",
    "is_challenge_hex": "api.service.applicant_auth",
    "sign_challenge": "api.service.applicant_auth",
    "ADMIN_KEY_FILE": "api.service.keys",
    "api_tokens": "api.service.tokens",
    "BackgroundFeed": "api.service.feed_task",
    "BackgroundTasks": "api.service.background",
    "BodyLimitMiddleware": "api.service.middleware",
    "ChainLink": "api.service.context",
    "configure_logging": "api.service.logs",
    "create_app": "api.service.app",
    "DAY_S": "api.service.tokens",
    "department_code": "api.service.lookup_terms",
    "DepartmentKeys": "api.service.keys",
    "Deployment": "api.service.context",
    "env_names": "api.service.settings",
    "FEED_CONSUMER": "api.service.tokens",
    "get_context": "api.service.deps",
    "header_deadline_protocol": "api.service.slow_clients",
    "identity_fingerprints": "api.service.lookup_terms",
    "IssuedToken": "api.service.tokens",
    "JsonFormatter": "api.service.logs",
    "KEY_FILES": "api.service.keys",
    "key_unlock": "api.service.keys",
    "lifecycle_departments": "api.service.lifecycle_task",
    "anchor_lease": "api.service.leased_tasks",
    "FEED_LEASE": "api.service.leased_tasks",
    "feed_sign_lease": "api.service.leased_tasks",
    "LIFECYCLE_LEASE": "api.service.leased_tasks",
    "NOTICES_LEASE": "api.service.leased_tasks",
    "RECONCILE_LEASE": "api.service.leased_tasks",
    "department_actions": "api.service.engines",
    "notice_deliverer": "api.service.notices_task",
    "matter_code": "api.service.lookup_terms",
    "OPERATOR": "api.service.tokens",
    "origins": "api.service.settings",
    "Principal": "api.service.tokens",
    "PROBLEM_BASE": "api.service.problems",
    "ProblemError": "api.service.problems",
    "ProblemType": "api.service.problems",
    "RateLimiter": "api.service.ratelimit",
    "run_lifecycles": "api.service.lifecycle_task",
    "ServiceContext": "api.service.context",
    "Settings": "api.service.settings",
    "SettingsError": "api.service.settings",
    "SUPERVISOR": "api.service.tokens",
    "TOKEN_PREFIX": "api.service.tokens",
    "TokenStore": "api.service.tokens",
}

__all__ = [
    "ADMIN_KEY_FILE",
    "DAY_S",
    "FEED_CONSUMER",
    "FEED_LEASE",
    "KEY_FILES",
    "LIFECYCLE_LEASE",
    "NOTICES_LEASE",
    "OPERATOR",
    "PROBLEM_BASE",
    "RECONCILE_LEASE",
    "SUPERVISOR",
    "TOKEN_PREFIX",
    "AccountRole",
    "ApplicantAuth",
    "BackgroundFeed",
    "BackgroundTasks",
    "BodyLimitMiddleware",
    "ChainLink",
    "DepartmentKeys",
    "Deployment",
    "IssuedToken",
    "JsonFormatter",
    "Principal",
    "ProblemError",
    "ProblemType",
    "RateLimiter",
    "ServiceContext",
    "Settings",
    "SettingsError",
    "TokenStore",
    "anchor_lease",
    "api_tokens",
    "appeal_records",
    "apply_for_repair",
    "challenge_message",
    "configure_logging",
    "create_app",
    "decide_objection",
    "decide_rectification",
    "decide_repair",
    "department_actions",
    "department_code",
    "env_names",
    "feed_sign_lease",
    "file_objection",
    "file_rectification",
    "get_context",
    "header_deadline_protocol",
    "identity_fingerprints",
    "is_challenge_hex",
    "key_unlock",
    "lifecycle_departments",
    "matter_code",
    "notice_deliverer",
    "origins",
    "rectification_records",
    "run_lifecycles",
    "sign_challenge",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
