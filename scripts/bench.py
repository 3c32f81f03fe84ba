"""Benchmarks: gas per commitment and end-to-end anchoring throughput, embedded chain and anvil.

`python scripts/bench.py --json` prints one JSON object of named figures. Not a test: speed
is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import (
    REGISTRAR_ROLE,
    AnvilNode,
    Chain,
    LedgerContract,
    MerkleTree,
    SignedCommitment,
    SigningKey,
    department_id,
    keccak256,
    sign_commitment,
    verify_signed,
)
from verifier import sample_commitments


def _setup(chain: Chain) -> tuple[LedgerContract, LocalAccount]:
    admin, registrar = Account.create(), Account.create()
    for account in (admin, registrar):
        chain.fund(account.address)
    ledger = LedgerContract.deploy(chain, admin)
    ledger.grant_department_role(admin, REGISTRAR_ROLE, registrar.address, department_id("BJ-HRSS"))
    return ledger, registrar


@contextmanager
def _anvil_chain() -> Iterator[Chain]:
    with AnvilNode() as node:
        yield Chain.connect(node.url, kind="anvil")


def _embedded_chain() -> Iterator[Chain]:
    yield Chain.embedded()


CHAINS: dict[str, Callable[[], Any]] = {
    "embedded": contextmanager(_embedded_chain),
    "anvil": _anvil_chain,
}


def gas_figures(chain: Chain) -> dict[str, Any]:
    """Gas per commitment: one single anchor, and batches of 100, 1,000 and 10,000 leaves."""
    ledger, registrar = _setup(chain)
    single = [
        ledger.anchor(registrar, keccak256(f"single-{i}".encode())).gas_used for i in range(5)
    ]
    figures: dict[str, Any] = {"single_anchor_gas": max(single)}
    for size in (100, 1_000, 10_000):
        tree = MerkleTree.build([keccak256(f"{size}-{i}".encode()) for i in range(size)])
        gas = ledger.anchor_batch(registrar, tree.root, size).gas_used
        figures[f"batch_{size}_gas"] = gas
        figures[f"batch_{size}_gas_per_commitment"] = round(gas / size, 2)
    return figures


def _signed_documents(count: int) -> list[dict[str, Any]]:
    """Signed commitments as they arrive: plain JSON (signing is the applicant's work)."""
    key = SigningKey.generate("ed25519")
    return [sign_commitment(c, key).to_json_obj() for c in sample_commitments(count)]


def _verify_all(documents: list[SignedCommitment]) -> None:
    for document in documents:
        verify_signed(document)


def end_to_end(chain: Chain, incoming: list[dict[str, Any]]) -> dict[str, Any]:
    """Schema check, signature check, canonical form and hash, tree, transaction and receipt."""
    ledger, registrar = _setup(chain)
    seconds: dict[str, float] = {}

    def timed(step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        seconds[step] = time.perf_counter() - started
        return result

    started = time.perf_counter()
    documents = timed("schema", lambda: [SignedCommitment.from_json_obj(o) for o in incoming])
    timed("signature", lambda: _verify_all(documents))
    hashes = timed("canonical_and_hash", lambda: [d.hash() for d in documents])
    tree = timed("tree", lambda: MerkleTree.build(hashes))
    timed("proofs", tree.proofs)
    timed("transaction_and_receipt", lambda: ledger.anchor_batch(registrar, tree.root, len(tree)))
    total = time.perf_counter() - started
    return {
        "commitments": len(incoming),
        "seconds": round(total, 3),
        "commitments_per_second": round(len(incoming) / total, 1),
        "share_of_time": {step: round(s / total, 3) for step, s in seconds.items()},
    }


def single_anchor_rate(chain: Chain, count: int) -> dict[str, Any]:
    """Single anchors per second, pipelined (all sent, then all receipts awaited)."""
    from ledger import anchor_singly

    ledger, registrar = _setup(chain)
    hashes = [keccak256(f"rate-{i}".encode()) for i in range(count)]
    started = time.perf_counter()
    anchor_singly(ledger, registrar, hashes)
    elapsed = time.perf_counter() - started
    return {"count": count, "anchors_per_second": round(count / elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=10_000, help="commitments end to end")
    parser.add_argument("--singles", type=int, default=500, help="single anchors for the rate")
    parser.add_argument("--chains", default="embedded,anvil", help="comma-separated chains")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    say(f"signing {args.count} sample commitments ...")
    incoming = _signed_documents(args.count)
    report: dict[str, Any] = {}
    for name in args.chains.split(","):
        say(f"[{name}] gas per commitment ...")
        with CHAINS[name]() as chain:
            figures = gas_figures(chain)
        say(f"[{name}] end to end, {args.count} commitments ...")
        with CHAINS[name]() as chain:
            figures["end_to_end"] = end_to_end(chain, incoming)
        say(f"[{name}] single anchors, {args.singles} ...")
        with CHAINS[name]() as chain:
            figures["single_anchors"] = single_anchor_rate(chain, args.singles)
        report[name] = figures
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, figures in report.items():
            print(f"== {name}")
            print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
