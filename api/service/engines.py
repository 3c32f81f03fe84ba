"""A department's verification engine or its actions for one request, and their refusals as
problems.

Both send transactions with the department's own accounts, which the contract has bound to
the department: whatever the service lets through, the contract checks again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from api.errors import MissingKeyError
from api.keyfiles import KeyFileError
from api.service.context import ServiceContext
from api.service.keys import AccountRole
from api.service.problems import (
    ACTION_REFUSED,
    CONTRACT_FORBIDDEN,
    CONTRACT_REFUSED,
    KEY_MISSING,
    UNAVAILABLE,
    ProblemError,
)
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    ChainError,
    ContractRevertError,
    Intake,
    InvalidDocumentError,
    LedgerContract,
    LockTimeoutError,
    SignatureError,
    department_id,
)
from verifier import DataSource, SourceKey, VerificationError, default_catalog, http_sources
from verifier.engine import Department, DepartmentActions, VerificationEngine, engine_for

# Errors by which the contract says "not this account" rather than "not in this state".
_FORBIDDING = frozenset(
    {
        "AccessControlUnauthorizedAccount",
        "AccountNotBound",
        "AccountBoundElsewhere",
        "WrongDepartment",
    }
)


def _sources(context: ServiceContext) -> dict[str, DataSource]:
    settings = context.settings
    if settings.sources_url is None or settings.sources_token_file is None:
        return {}
    try:
        token = settings.sources_token_file.read_text().strip()
    except OSError as exc:
        raise ProblemError(
            UNAVAILABLE, f"cannot read the data service's token file: {exc.strerror}"
        ) from None
    if not token or any(c.isspace() for c in token):
        raise ProblemError(UNAVAILABLE, "the data service's token file holds no token")
    key = None
    if settings.sources_key_file is not None:
        try:
            key = SourceKey.from_file(settings.sources_key_file)
        except ValueError as exc:
            raise ProblemError(UNAVAILABLE, f"the data service's key: {exc}") from None
    return http_sources(default_catalog(), settings.sources_url, token, key=key)


@contextmanager
def department_engine(
    context: ServiceContext,
    department: str,
    *,
    with_sources: bool = False,
) -> Iterator[VerificationEngine]:
    """The department's verification engine, holding the department's lock; closed afterwards.

    503 problems when intake is closed, the chain does not answer or a key is missing; 403
    when the contract does not bind the verifier account to the department (asked first, so
    that nothing is queued that the chain would refuse).
    """
    intake, ledger, accounts = _acting_for(context, department, "verifier")
    engine = engine_for(
        accounts,
        store=context.store,
        intake=intake,
        ledger=ledger,
        catalog=default_catalog(),
        sources=_sources(context) if with_sources else {},
        # No worker processes: forking a process that runs threads (the service's) can
        # copy a lock held by another thread and hang.
        workers=0,
    )
    try:
        with _department_lock(context, ledger, department):
            yield engine
    finally:
        engine.close()


@contextmanager
def department_actions(
    context: ServiceContext, department: str, *, acting: AccountRole = "verifier"
) -> Iterator[DepartmentActions]:
    """The department's actions (withdraw, decide, repair, ...), holding the department's
    lock: no verification run is built for them. The problems of `department_engine`; the
    `acting` account (the registrar's, to withdraw) must be bound to the department."""
    intake, ledger, accounts = _acting_for(context, department, acting)
    actions = DepartmentActions(
        accounts, store=context.store, intake=intake, ledger=ledger, catalog=default_catalog()
    )
    with _department_lock(context, ledger, department):
        yield actions


@contextmanager
def _department_lock(
    context: ServiceContext, ledger: LedgerContract, department: str
) -> Iterator[None]:
    """The department's lock across the instances of the store (the embedded chain's write
    lock there): a run or action of one department holds up no other department. 503 when
    another instance acts for the department for longer than a request waits."""
    with ExitStack() as held:
        try:
            held.enter_context(context.chain.department_lock(ledger, context.locks, department))
        except LockTimeoutError:
            raise ProblemError(
                UNAVAILABLE, f"another instance is acting for {department} now: try again shortly"
            ) from None
        yield


def _acting_for(
    context: ServiceContext, department: str, acting: AccountRole
) -> tuple[Intake, LedgerContract, Department]:
    """Intake, the contract and the department's accounts, once `acting` is known bound."""
    intake = context.intake
    if intake is None:
        raise ProblemError(UNAVAILABLE, "the service was started without a master key")
    ledger = context.chain.ledger()
    if ledger is None:
        raise ProblemError(
            UNAVAILABLE, f"the chain does not answer now: {context.chain.last_error}"
        )
    keys = context.keys
    try:
        accounts = Department(
            department,
            verifier=keys.account(department, "verifier"),
            report_key=keys.report_key(department),
            registrar=keys.account(department, "registrar")
            if keys.has(department, "registrar")
            else None,
        )
    except (MissingKeyError, KeyFileError) as exc:  # names the file and what to do, no secret
        raise ProblemError(KEY_MISSING, str(exc)) from None
    except (InvalidDocumentError, SignatureError):
        raise ProblemError(
            KEY_MISSING, f"a key file of {department} in {keys.keys_dir} cannot be read"
        ) from None
    account = accounts.verifier if acting == "verifier" else accounts.registrar
    if account is None:
        raise ProblemError(KEY_MISSING, str(keys.missing(department, acting)))
    _require_binding(context, account.address, department, acting)
    return intake, ledger, accounts


def _require_binding(
    context: ServiceContext, address: str, department: str, role: AccountRole
) -> None:
    role_id = REGISTRAR_ROLE if role == "registrar" else VERIFIER_ROLE

    def bound(ledger: LedgerContract) -> tuple[bool, bytes]:
        return ledger.has_role(role_id, address), ledger.department_of(address)

    answer = context.chain.read(bound)
    if answer is None:
        raise ProblemError(
            UNAVAILABLE, f"the chain does not answer now: {context.chain.last_error}"
        )
    has_role, bound_to = answer
    if not has_role or bound_to != department_id(department):
        raise ProblemError(
            CONTRACT_FORBIDDEN,
            f"the contract does not bind the service's {role} account {address} to "
            f"{department} as a {role}: ask the governing office to grant the role",
            error="AccountNotBound" if not has_role else "AccountBoundElsewhere",
        )


@contextmanager
def engine_refusals() -> Iterator[None]:
    """The engine's and the contract's refusals as 409/403 problems, a dead node or a busy
    account as 503."""
    try:
        yield
    except VerificationError as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None
    except ContractRevertError as exc:
        kind = CONTRACT_FORBIDDEN if exc.error_name in _FORBIDDING else CONTRACT_REFUSED
        raise ProblemError(kind, str(exc), error=exc.error_name) from None
    except LockTimeoutError:  # another instance signs with the account, for too long
        raise ProblemError(UNAVAILABLE, "the department's account is busy: try again") from None
    except ChainError as exc:
        raise ProblemError(UNAVAILABLE, f"the chain did not complete it: {exc}") from None
