"""The multi-signature admin: a Safe 1.4.1 proxy, its SafeTx hash, owners' signatures, execution.

The Safe's contracts are npm's @safe-global/safe-contracts 1.4.1 built by our toolchain
(`ledger/artifacts/SafeL2.json`, `SafeProxyFactory.json`). The SafeTx hash is computed here
exactly as Safe 1.4.1's `getTransactionHash` does (EIP-712, domain = chain id and the Safe's
address), so an owner signs on their own machine without asking the chain; signatures are
65 bytes each, `v` 27/28 over the hash itself or `v` 31/32 over its eth_sign message, and
go to `execTransaction` sorted by owner address, as the Safe demands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32, HexStr
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxParams, Wei

from ledger.artifact import SAFE_FACTORY_NAME, SAFE_SINGLETON_NAME, load_safe_artifact
from ledger.canonical import keccak256
from ledger.chain import Chain, abi_type
from ledger.contract import LedgerContract
from ledger.errors import ChainError, ContractRevertError, SafeError

ZERO_ADDRESS = "0x" + "00" * 20
SAFE_VERSION = "1.4.1"
DEFAULT_ADMIN_ROLE = bytes(32)  # OpenZeppelin AccessControl's admin of every role
# Safe 1.4.1's constants (Safe.sol): its EIP-712 domain has no name or version.
DOMAIN_SEPARATOR_TYPEHASH = keccak256(b"EIP712Domain(uint256 chainId,address verifyingContract)")
SAFE_TX_TYPEHASH = keccak256(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
    b"uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)
# setup(owners, threshold, to, data, fallbackHandler, paymentToken, payment, paymentReceiver)
_SETUP_TYPES = [
    "address[]",
    "uint256",
    "address",
    "bytes",
    "address",
    "address",
    "uint256",
    "address",
]
SIGNATURE_LENGTH = 65
MAX_OWNERS = 50
MAX_CALL_DATA = 64 * 1024
# What Safe 1.4.1's GSxxx revert codes mean (its docs/error_codes.md), for readable refusals.
SAFE_ERRORS = {
    "GS001": "the threshold must be set (setup)",
    "GS013": "the wrapped call reverted",
    "GS020": "fewer signatures than the threshold",
    "GS024": "an invalid contract signature",
    "GS025": "a hash not approved on chain",
    "GS026": "a signature not by an owner, or signatures unsorted or repeated",
    "GS031": "only the Safe itself may change its owners",
    "GS200": "the Safe is already set up",
    "GS201": "the threshold is above the number of owners",
    "GS202": "the threshold must be at least 1",
    "GS203": "an invalid owner address",
    "GS204": "an owner given twice",
    "GS205": "the previous owner named is not the one before it in the Safe's list",
}


@dataclass(frozen=True)
class SafeTx:
    """One Safe transaction, as `execTransaction` takes it and owners sign it.

    Only plain calls (operation 0) without refunds are built here: a delegate call would
    run foreign code with the Safe's own storage, and the admin pays its own gas.
    """

    safe: str
    chain_id: int
    to: str
    data: bytes
    nonce: int
    value: int = 0
    operation: int = 0
    safe_tx_gas: int = 0
    base_gas: int = 0
    gas_price: int = 0
    gas_token: str = ZERO_ADDRESS
    refund_receiver: str = ZERO_ADDRESS

    def __post_init__(self) -> None:
        for name in ("safe", "to", "gas_token", "refund_receiver"):
            object.__setattr__(self, name, _address(getattr(self, name), name))
        if self.operation != 0:
            raise SafeError("only plain calls (operation 0) are admin transactions here")
        if len(self.data) > MAX_CALL_DATA:
            raise SafeError(f"call data of {len(self.data)} bytes: at most {MAX_CALL_DATA}")
        for name in ("chain_id", "nonce", "value", "safe_tx_gas", "base_gas", "gas_price"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**256:
                raise SafeError(f"{name} must be an integer in uint256, not {number!r}")
        if self.gas_price or self.gas_token != ZERO_ADDRESS or self.refund_receiver != ZERO_ADDRESS:
            raise SafeError("refunds (gas price, gas token, refund receiver) are not used here")

    def struct_hash(self) -> bytes:
        """keccak256 of the SafeTx struct, as Safe 1.4.1's `encodeTransactionData` hashes it."""
        fields = [
            ("bytes32", SAFE_TX_TYPEHASH),
            ("address", self.to),
            ("uint256", self.value),
            ("bytes32", keccak256(self.data)),
            ("uint8", self.operation),
            ("uint256", self.safe_tx_gas),
            ("uint256", self.base_gas),
            ("uint256", self.gas_price),
            ("address", self.gas_token),
            ("address", self.refund_receiver),
            ("uint256", self.nonce),
        ]
        return keccak256(abi_encode([t for t, _ in fields], [v for _, v in fields]))

    def domain_separator(self) -> bytes:
        """The Safe's EIP-712 domain separator (its `domainSeparator()`)."""
        return keccak256(
            abi_encode(
                ["bytes32", "uint256", "address"],
                [DOMAIN_SEPARATOR_TYPEHASH, self.chain_id, self.safe],
            )
        )

    def hash(self) -> bytes:
        """The SafeTx hash the owners sign (Safe's `getTransactionHash`)."""
        return keccak256(b"\x19\x01" + self.domain_separator() + self.struct_hash())

    def exec_args(self, signatures: bytes) -> list[Any]:
        """The arguments of `execTransaction` with these packed signatures."""
        return [
            self.to, self.value, self.data, self.operation, self.safe_tx_gas, self.base_gas,
            self.gas_price, self.gas_token, self.refund_receiver, signatures,
        ]  # fmt: skip


@dataclass(frozen=True)
class Execution:
    """A Safe transaction as executed on chain: where, what, and whose approvals counted."""

    transaction: bytes
    block_number: int
    tx: SafeTx
    approvers: tuple[str, ...]
    log_index: int = -1  # its SafeMultiSigTransaction log's place in the block


OwnerEventKind = Literal["added_owner", "removed_owner", "threshold"]


@dataclass(frozen=True)
class OwnerEvent:
    """A change of the Safe's owners or threshold as its own events record it (AddedOwner,
    RemovedOwner, ChangedThreshold): the owner added or removed, or the new threshold."""

    transaction: bytes
    block_number: int
    log_index: int
    kind: OwnerEventKind
    value: str | int


@dataclass(frozen=True)
class OwnerSignature:
    """One owner's 65-byte signature of a SafeTx hash."""

    owner: str
    signature: bytes


def _address(value: str, name: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise SafeError(f"{name} is not an address: {value!r}")
    return Web3.to_checksum_address(value)


def _eth_sign_digest(safe_tx_hash: bytes) -> bytes:
    return keccak256(b"\x19Ethereum Signed Message:\n32" + safe_tx_hash)


def sign_safe_tx(owner: LocalAccount, tx: SafeTx, *, eth_sign: bool = False) -> OwnerSignature:
    """`owner`'s signature of `tx`: over the EIP-712 hash itself (v 27/28), or, with
    `eth_sign`, over its eth_sign message (v 31/32, Safe's mark for that form)."""
    safe_tx_hash = tx.hash()
    digest = _eth_sign_digest(safe_tx_hash) if eth_sign else safe_tx_hash
    signed = owner.unsafe_sign_hash(Hash32(digest))
    v = int(signed.v) + (4 if eth_sign else 0)
    raw = int(signed.r).to_bytes(32, "big") + int(signed.s).to_bytes(32, "big") + bytes([v])
    return OwnerSignature(owner.address, raw)


def signer_of(safe_tx_hash: bytes, signature: bytes) -> str:
    """The address that made `signature` over `safe_tx_hash`, read as Safe 1.4.1 reads an
    ECDSA signature (v 27/28 direct, v 31/32 eth_sign); SafeError for any other kind."""
    if len(signature) != SIGNATURE_LENGTH:
        raise SafeError(f"a signature is {SIGNATURE_LENGTH} bytes, not {len(signature)}")
    v = signature[64]
    if v in (27, 28):
        digest = safe_tx_hash
    elif v in (31, 32):
        digest, v = _eth_sign_digest(safe_tx_hash), v - 4
    else:
        raise SafeError(f"signature type v={v} is not an owner's ECDSA signature (27/28, 31/32)")
    try:
        recovered: str = Account._recover_hash(digest, vrs=(v, signature[:32], signature[32:64]))
    except Exception as exc:  # a malformed r, s or v
        raise SafeError(f"the signature does not recover to any address ({exc})") from exc
    return Web3.to_checksum_address(recovered)


def checked_signatures(tx: SafeTx, signatures: Iterable[OwnerSignature]) -> list[OwnerSignature]:
    """Each signature checked against the owner it names, one per owner, sorted by owner
    address as `execTransaction` requires; SafeError on a signature by someone else."""
    safe_tx_hash = tx.hash()
    by_owner: dict[str, OwnerSignature] = {}
    for item in signatures:
        owner = _address(item.owner, "owner")
        if signer_of(safe_tx_hash, item.signature) != owner:
            raise SafeError(f"the signature said to be {owner}'s was not made by {owner}")
        by_owner[owner] = OwnerSignature(owner, item.signature)
    return [by_owner[o] for o in sorted(by_owner, key=lambda a: int(a, 16))]


def pack_signatures(signatures: Sequence[OwnerSignature]) -> bytes:
    """The signatures concatenated in ascending owner order (execTransaction's `signatures`)."""
    ordered = sorted(signatures, key=lambda s: int(s.owner, 16))
    return b"".join(s.signature for s in ordered)


def _approvers(tx: SafeTx, signatures: bytes, threshold: int) -> tuple[str, ...]:
    """The owners behind the first `threshold` signatures: the ones the Safe checked (it
    reads no further). An on-chain approval (v 1) or a contract signature (v 0) names its
    owner in `r`; an ECDSA signature is recovered."""
    safe_tx_hash = tx.hash()
    owners: list[str] = []
    for i in range(min(threshold, len(signatures) // SIGNATURE_LENGTH)):
        part = signatures[i * SIGNATURE_LENGTH : (i + 1) * SIGNATURE_LENGTH]
        if part[64] in (0, 1):
            owners.append(Web3.to_checksum_address(part[12:32]))
        else:
            owners.append(signer_of(safe_tx_hash, part))
    return tuple(owners)


def _execution_of(log: Any, safe: str, chain_id: int) -> Execution:
    """The Execution a decoded SafeMultiSigTransaction log of `safe` describes."""
    args = log["args"]
    nonce, _sender, threshold = abi_decode(
        ["uint256", "address", "uint256"], bytes(args["additionalInfo"])
    )
    tx = SafeTx(
        safe, chain_id, args["to"], bytes(args["data"]), int(nonce),
        value=int(args["value"]), operation=int(args["operation"]),
    )  # fmt: skip
    approvers = _approvers(tx, bytes(args["signatures"]), int(threshold))
    return Execution(
        bytes(log["transactionHash"]), int(log["blockNumber"]), tx, approvers, int(log["logIndex"])
    )


def safe_execution_in(
    chain: Chain, transaction: bytes, to: str, data: bytes | None = None
) -> Execution | None:
    """The Safe execution inside `transaction` that called `to` (with exactly `data`, when
    given) and succeeded, with the owners whose approvals the Safe checked; None when no
    Safe did.

    Read from the transaction's receipt alone: SafeL2 logs SafeMultiSigTransaction before the
    call and ExecutionSuccess (with the SafeTx hash) after it, both from the Safe's address;
    a failed call logs ExecutionFailure instead and is not counted. What the call did, and
    whether its caller was allowed to, is the called contract's own event's word (for the
    ledger's admin acts, AccessControl let only the admin through)."""
    abi = load_safe_artifact(SAFE_SINGLETON_NAME)["abi"]
    events = chain.w3.eth.contract(abi=abi).events
    receipt = chain.w3.eth.get_transaction_receipt(Hash32(transaction))
    target = _address(to, "to")
    succeeded = {
        (Web3.to_checksum_address(log["address"]), bytes(log["args"]["txHash"]))
        for log in events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
    }
    for log in events.SafeMultiSigTransaction().process_receipt(receipt, errors=DISCARD):
        if log["args"]["to"] != target or data not in (None, bytes(log["args"]["data"])):
            continue
        safe = Web3.to_checksum_address(log["address"])
        try:
            execution = _execution_of(log, safe, chain.chain_id)
        except SafeError:  # a delegate call or a refund: not one of the admin's acts
            continue
        if (safe, execution.tx.hash()) in succeeded:
            return execution
    return None


def _selector_call(signature: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    return function_signature_to_4byte_selector(signature) + abi_encode(list(types), list(args))


class SafeAdmin:
    """A deployed Safe proxy (SafeL2 1.4.1 behind it) on one chain."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = Web3.to_checksum_address(address)
        self.abi: list[dict[str, Any]] = load_safe_artifact(SAFE_SINGLETON_NAME)["abi"]
        self._contract = chain.w3.eth.contract(address=self.address, abi=self.abi)

    # ------------------------------------------------------------------ deployment

    @staticmethod
    def deploy_singleton(chain: Chain, deployer: LocalAccount) -> tuple[str, str]:
        """Deploy the SafeL2 singleton and the proxy factory; return their addresses."""
        return tuple(  # type: ignore[return-value]
            _deploy(chain, deployer, name) for name in (SAFE_SINGLETON_NAME, SAFE_FACTORY_NAME)
        )

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        deployer: LocalAccount,
        owners: Sequence[str],
        threshold: int,
        *,
        singleton: str | None = None,
        factory: str | None = None,
        salt_nonce: int = 0,
    ) -> SafeAdmin:
        """A new Safe proxy with `owners` and `threshold` (the singleton and factory deployed
        first unless given); SafeError on a bad owner list or threshold."""
        checked = [_address(o, "owner") for o in owners]
        if not 1 <= len(checked) <= MAX_OWNERS or len(set(checked)) != len(checked):
            raise SafeError(f"1 to {MAX_OWNERS} distinct owners, not {len(checked)}")
        if not 1 <= threshold <= len(checked):
            raise SafeError(f"threshold {threshold} is not between 1 and {len(checked)}")
        if singleton is None or factory is None:
            singleton, factory = cls.deploy_singleton(chain, deployer)
        setup = _selector_call(
            "setup(address[],uint256,address,bytes,address,address,uint256,address)",
            _SETUP_TYPES,
            [checked, threshold, ZERO_ADDRESS, b"", ZERO_ADDRESS, ZERO_ADDRESS, 0, ZERO_ADDRESS],
        )
        factory_abi = load_safe_artifact(SAFE_FACTORY_NAME)["abi"]
        proxy_factory = chain.w3.eth.contract(
            address=Web3.to_checksum_address(_address(factory, "factory")), abi=factory_abi
        )
        create = proxy_factory.functions.createProxyWithNonce(
            _address(singleton, "singleton"), setup, salt_nonce
        )
        receipt = chain.transact(deployer, create.build_transaction, abi=factory_abi)
        created = proxy_factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
        if len(created) != 1:
            raise ChainError("the proxy factory logged no ProxyCreation")
        return cls(chain, created[0]["args"]["proxy"])

    # ------------------------------------------------------------------ state

    def _view(self, name: str, *args: Any) -> Any:
        # An address that holds no Safe answers with nothing or garbage: say so, typed.
        try:
            return getattr(self._contract.functions, name)(*args).call()
        except Exception as exc:
            raise ChainError(
                f"{self.address} did not answer {name}() as a Safe does "
                f"({type(exc).__name__}): is it a Safe on this chain?"
            ) from exc

    def owners(self) -> list[str]:
        """The Safe's owners (its linked-list order)."""
        return [Web3.to_checksum_address(o) for o in self._view("getOwners")]

    def threshold(self) -> int:
        """How many owners must sign."""
        return int(self._view("getThreshold"))

    def nonce(self) -> int:
        """The nonce the next executed Safe transaction must carry."""
        return int(self._view("nonce"))

    def version(self) -> str:
        """The Safe's version string (1.4.1)."""
        return str(self._view("VERSION"))

    def transaction(self, to: str, data: bytes, *, nonce: int | None = None) -> SafeTx:
        """A plain call of `to` with `data` from this Safe, at its next nonce by default."""
        return SafeTx(
            self.address, self.chain.chain_id, to, data, self.nonce() if nonce is None else nonce
        )

    def transaction_hash_on_chain(self, tx: SafeTx) -> bytes:
        """The Safe's own `getTransactionHash` of `tx` (a view call): the independent check."""
        return bytes(self._view("getTransactionHash", *tx.exec_args(b"")[:9], tx.nonce))

    def executions(self, from_block: int = 0, to_block: int | str = "latest") -> list[Execution]:
        """Every Safe transaction this Safe executed in the block range, read from SafeL2's
        SafeMultiSigTransaction events alone, with the owners whose approvals it checked."""
        event = self._contract.events.SafeMultiSigTransaction
        return [
            _execution_of(log, self.address, self.chain.chain_id)
            for log in event.get_logs(from_block=from_block, to_block=to_block)
        ]

    def owner_events(self, from_block: int = 0, to_block: int | str = "latest") -> list[OwnerEvent]:
        """Every change of this Safe's owners or threshold in the block range, oldest first,
        read from its AddedOwner, RemovedOwner and ChangedThreshold events (its setup logs
        none of them: `SafeSetup` names the first owners)."""
        events = self._contract.events
        found: list[OwnerEvent] = []
        for kind, event, field in (
            ("added_owner", events.AddedOwner, "owner"),
            ("removed_owner", events.RemovedOwner, "owner"),
            ("threshold", events.ChangedThreshold, "threshold"),
        ):
            for log in event.get_logs(from_block=from_block, to_block=to_block):
                value = log["args"][field]
                found.append(
                    OwnerEvent(
                        bytes(log["transactionHash"]),
                        int(log["blockNumber"]),
                        int(log["logIndex"]),
                        kind,  # type: ignore[arg-type]
                        int(value) if field == "threshold" else Web3.to_checksum_address(value),
                    )
                )
        return sorted(found, key=lambda e: (e.block_number, e.log_index))

    # ------------------------------------------------------------------ execution

    def refusal(
        self,
        sender: str,
        tx: SafeTx,
        signatures: bytes,
        *,
        target_abi: Sequence[dict[str, Any]] = (),
    ) -> ContractRevertError | None:
        """What the Safe says to executing `tx` now, without sending it: None when it would go
        through; for a wrapped call that would revert, the target contract's own error
        (named from `target_abi`)."""
        self._check_own(tx)
        call: TxParams = {
            "from": _address(sender, "sender"),
            "to": self.address,
            "data": HexStr(self._exec_data(tx, signatures)),
        }
        refused = self.chain.refusal(call, abi=self.abi)
        if refused is not None and refused.error_args[:1] == ("GS013",):
            inner = self.chain.refusal(
                {"from": self.address, "to": tx.to, "data": tx.data, "value": Wei(tx.value)},
                abi=target_abi,
            )
            return inner or refused
        return refused

    def execute(
        self, sender: LocalAccount, tx: SafeTx, signatures: Sequence[OwnerSignature]
    ) -> bytes:
        """Send `execTransaction` from `sender` (any account; it pays the gas) and wait;
        return the transaction hash. The Safe itself checks the signatures and threshold:
        a refusal raises ContractRevertError naming Safe's GSxxx code."""
        self._check_own(tx)
        data = self._exec_data(tx, pack_signatures(signatures))
        receipt = self.chain.transact(
            sender, lambda p: _with_fees(self.chain, {**p, "to": self.address, "data": data}),
            abi=self.abi,
        )  # fmt: skip
        failed = self._contract.events.ExecutionFailure().process_receipt(receipt, errors=DISCARD)
        if failed:
            raise ChainError("the Safe ran the transaction but its call failed (ExecutionFailure)")
        return bytes(receipt["transactionHash"])

    def _exec_data(self, tx: SafeTx, signatures: bytes) -> str:
        args = tx.exec_args(signatures)
        entry = next(e for e in self.abi if e.get("name") == "execTransaction")
        types = [abi_type(i) for i in entry["inputs"]]
        return "0x" + _selector_call(f"execTransaction({','.join(types)})", types, args).hex()

    def _check_own(self, tx: SafeTx) -> None:
        if tx.safe != self.address or tx.chain_id != self.chain.chain_id:
            raise SafeError(
                f"the transaction is for Safe {tx.safe} on chain {tx.chain_id}, not "
                f"{self.address} on chain {self.chain.chain_id}"
            )


def _with_fees(chain: Chain, tx: dict[str, Any]) -> TxParams:
    w3 = chain.w3
    params: dict[str, Any] = {**tx, "value": 0}
    if "gas" not in params:
        params["gas"] = w3.eth.estimate_gas(params)  # type: ignore[arg-type]
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
    tip = w3.eth.max_priority_fee
    params["maxPriorityFeePerGas"] = tip
    params["maxFeePerGas"] = 2 * int(base_fee) + int(tip)
    return params  # type: ignore[return-value]


def _deploy(chain: Chain, deployer: LocalAccount, name: str) -> str:
    artifact = load_safe_artifact(name)
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = chain.transact(
        deployer, lambda p: factory.constructor().build_transaction(p), abi=artifact["abi"]
    )
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"the {name} deployment receipt has no contract address")
    return Web3.to_checksum_address(address)


def describe_refusal(error: ContractRevertError) -> str:
    """A refusal in words: Safe's GSxxx code explained, else the contract's error name."""
    code = error.error_args[0] if error.error_args else None
    if error.error_name == "Error" and isinstance(code, str) and code in SAFE_ERRORS:
        return f"{code}: {SAFE_ERRORS[code]}"
    return f"{error.error_name}{tuple(error.error_args) if error.error_args else ''}"


def hand_over_admin(ledger: LedgerContract, admin: LocalAccount, safe: SafeAdmin) -> None:
    """Give the ledger's admin role to `safe` and renounce it for `admin`: afterwards only
    the Safe's owners, `threshold` of them together, can bind, grant or revoke.

    Refuses (SafeError) a Safe on another chain, an address that holds no set-up Safe 1.4.1,
    or an `admin` that does not hold the role; the grant comes first, so a failure between the
    two steps leaves the role with both rather than with nobody.
    """
    if safe.chain.chain_id != ledger.chain.chain_id:
        raise SafeError("the Safe is on another chain than the ledger")
    if not safe.chain.code_at(safe.address):
        raise SafeError(f"{safe.address} holds no contract: not a Safe")
    if safe.version() != SAFE_VERSION or not safe.owners() or safe.threshold() < 1:
        raise SafeError(f"{safe.address} is not a set-up Safe {SAFE_VERSION}")
    if not ledger.has_role(DEFAULT_ADMIN_ROLE, admin.address):
        raise SafeError(f"{admin.address} does not hold the ledger's admin role")
    for name, account in (("grantRole", safe.address), ("renounceRole", admin.address)):
        ledger.chain.transact(
            admin, ledger.builder(name, DEFAULT_ADMIN_ROLE, account), abi=ledger.abi
        )
    if ledger.has_role(DEFAULT_ADMIN_ROLE, admin.address) or not ledger.has_role(
        DEFAULT_ADMIN_ROLE, safe.address
    ):
        raise ChainError("the admin role did not move to the Safe")
