"""The ledger's error hierarchy: one root, each error also a builtin it resembles.

``LedgerError`` is the root of every error the project raises on purpose: the verifier's
errors (``verifier.errors``) and the api's (``api.errors``) subclass it too, so one
``except LedgerError`` catches them all and the command line maps each to its exit code.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""


class InvalidDocumentError(LedgerError, ValueError):
    """A document is not JSON, fails the schema, or cannot be made canonical."""


class SignatureError(LedgerError, ValueError):
    """A signature is missing, malformed, or does not verify over the canonical bytes."""


class InvalidHashError(LedgerError, ValueError):
    """A value that should be a 32-byte hash is not one."""


class MerkleError(LedgerError, ValueError):
    """A Merkle tree cannot be built (no leaves) or a proof is malformed."""


class ProofBundleError(LedgerError, ValueError):
    """A proof bundle is malformed: a field is missing or of the wrong shape."""


class CompilerError(LedgerError, RuntimeError):
    """The Solidity compiler failed or its artifact is missing or stale."""


class ChainError(LedgerError, RuntimeError):
    """The chain could not be reached or a transaction did not complete."""


class NodeUnreachableError(ChainError, ConnectionError):
    """No node answers at the given address."""


class TransactionTimeoutError(ChainError, TimeoutError):
    """A transaction was sent but no receipt arrived before the deadline."""


class StoreError(LedgerError, RuntimeError):
    """The store cannot be opened or a write conflicts with another writer."""


class VaultError(LedgerError, ValueError):
    """A master key is missing or malformed, or sealed data cannot be opened."""


class ErasedError(VaultError):
    """The data key was destroyed: the personal data are gone for good."""


class ErasureRefusedError(LedgerError, PermissionError):
    """The law requires keeping what erasure would destroy (a published breach): retry later."""


class ApplicantExcludedError(LedgerError, PermissionError):
    """The applicant has an unrepaired breach: the commitment route is closed to them."""


class CodeTakenError(InvalidDocumentError):
    """Another commitment of the department already holds this commitment code."""


class SafeError(LedgerError, ValueError):
    """A Safe transaction or proposal is malformed, or a signature is not its owner's."""


class ContractRevertError(ChainError):
    """The contract refused a call; ``name`` is its custom error, ``args`` its values."""

    def __init__(self, name: str, args: tuple[object, ...] = (), raw: bytes = b"") -> None:
        self.error_name = name
        self.error_args = args
        self.raw = raw
        shown = ", ".join(_show(a) for a in args)
        super().__init__(f"contract reverted with {name}({shown})")


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)
