"""Commitment Ledger core: documents, canonical form, signatures, Merkle batches, chain, contract.

The names below are the public surface; other modules import only these. Submodules
not listed (compiler) are build-time tools.
"""

from ledger.anchor_now import AnchorReceipt, anchor_batch, anchor_singly, check_and_hash
from ledger.anvil import AnvilNode, free_port
from ledger.artifact import Artifact, load_artifact
from ledger.canonical import canonical_bytes, commitment_hash, keccak256, load_json_bytes
from ledger.chain import Chain, ChainKind, Mined, decode_revert
from ledger.contract import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    ZERO_HASH,
    BatchInfo,
    LedgerContract,
    OutcomeItem,
    Sent,
    Standing,
    StandingNow,
    Status,
    department_id,
)
from ledger.documents import (
    Applicant,
    Claim,
    Commitment,
    Signature,
    SignedCommitment,
    make_resident_id,
    make_uscc,
    new_salt,
)
from ledger.errors import (
    ApplicantExcludedError,
    ChainError,
    CompilerError,
    ContractRevertError,
    ErasedError,
    InvalidDocumentError,
    InvalidHashError,
    LedgerError,
    MerkleError,
    NodeUnreachableError,
    ProofBundleError,
    SignatureError,
    StoreError,
    TransactionTimeoutError,
    VaultError,
)
from ledger.merkle import BatchProofVerifier, MerkleTree, leaf_hash, process_proof, verify_proof
from ledger.proofs import BundleReport, ProofBundle, check_bundle, check_bundle_offline
from ledger.signing import SigningKey, sign_commitment, verify_signed
from ledger.types import DepartmentId, Hash32, hex32, to_hash32

__all__ = [
    "REGISTRAR_ROLE",
    "VERIFIER_ROLE",
    "ZERO_HASH",
    "AnchorReceipt",
    "AnvilNode",
    "Applicant",
    "ApplicantExcludedError",
    "Artifact",
    "BatchInfo",
    "BatchProofVerifier",
    "BundleReport",
    "Chain",
    "ChainError",
    "ChainKind",
    "Claim",
    "Commitment",
    "CompilerError",
    "ContractRevertError",
    "DepartmentId",
    "ErasedError",
    "Hash32",
    "InvalidDocumentError",
    "InvalidHashError",
    "LedgerContract",
    "LedgerError",
    "MerkleError",
    "MerkleTree",
    "Mined",
    "NodeUnreachableError",
    "OutcomeItem",
    "ProofBundle",
    "ProofBundleError",
    "Sent",
    "Signature",
    "SignatureError",
    "SignedCommitment",
    "SigningKey",
    "Standing",
    "StandingNow",
    "Status",
    "StoreError",
    "TransactionTimeoutError",
    "VaultError",
    "anchor_batch",
    "anchor_singly",
    "canonical_bytes",
    "check_and_hash",
    "check_bundle",
    "check_bundle_offline",
    "commitment_hash",
    "decode_revert",
    "department_id",
    "free_port",
    "hex32",
    "keccak256",
    "leaf_hash",
    "load_artifact",
    "load_json_bytes",
    "make_resident_id",
    "make_uscc",
    "new_salt",
    "process_proof",
    "sign_commitment",
    "to_hash32",
    "verify_proof",
    "verify_signed",
]
