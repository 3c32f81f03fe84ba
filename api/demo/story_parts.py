"""The demo story's parts: timed steps, gas per phase, a tampered document, planted cases."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

from api.cli import progress_bar
from api.demo.sample_data import planted
from api.demo.samples import sample_commitments
from ledger import Chain, Claim, Commitment, SignedCommitment

STATE_NAMES = {"manual": "needs_manual"}
# Planted at least (as many as the count allows), so that every outcome shows.
EVERY_CASE = {"mismatch": 2, "false": 1}
SEARCHED_SAMPLES = 5_000  # later samples looked through for them


class Steps:
    """Times each step of the demo and drives one progress bar per long step."""

    def __init__(self, quiet: bool) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress_bar(disabled=quiet)

    @contextmanager
    def step(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()

        def advance(n: int) -> None:
            self.progress.advance(task, n)

        yield advance
        self.progress.update(task, completed=total)
        self.seconds[name] = time.perf_counter() - started


class Ledgerbook:
    """Transactions and gas per phase of the story, read from the chain's blocks."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.phases: dict[str, dict[str, int]] = {}
        self._last = chain.block_number()

    def close(self, phase: str) -> None:
        head = self.chain.block_number()
        transactions = gas = 0
        for number in range(self._last + 1, head + 1):
            block = self.chain.w3.eth.get_block(number)
            transactions += len(block["transactions"])
            gas += int(block["gasUsed"])
        self.phases[phase] = {"transactions": transactions, "gas_used": gas}
        self._last = head

    def totals(self) -> dict[str, dict[str, int]]:
        total = {
            "transactions": sum(p["transactions"] for p in self.phases.values()),
            "gas_used": sum(p["gas_used"] for p in self.phases.values()),
        }
        return {**self.phases, "total": total}


def tamper_with(signed: SignedCommitment) -> SignedCommitment:
    """The same document with its first claim's value changed, signature kept."""
    document = signed.document
    first = document.claims[0]
    changed = Claim(key=first.key, op=first.op, value=_other_value(first.value))
    claims = [changed, *document.claims[1:]]
    return SignedCommitment(
        document=document.model_copy(update={"claims": claims}), signature=signed.signature
    )


def _other_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 36 if value > 36 else value + 1
    if isinstance(value, list):
        return value[:-1] or ["none"]
    return f"{value}-changed"


def documents_with_every_case(count: int) -> tuple[list[Commitment], int]:
    """`count` sample commitments in which at least two mismatches and one false claim are
    planted (as many as `count` allows), so that even a small demo shows a rectification,
    a breach and a repair: agreeing ones at the end give way to later samples that are.
    Also how many were put in that way."""
    documents = list(sample_commitments(count))
    kinds: Counter[str] = Counter(planted(d.applicant.id_number) for d in documents)
    wanted = Counter({kind: max(0, n - kinds[kind]) for kind, n in EVERY_CASE.items()})
    replaceable = [i for i, d in enumerate(documents) if planted(d.applicant.id_number) == "agree"]
    forced = 0
    for document in islice(sample_commitments(count + SEARCHED_SAMPLES), count, None):
        if not +wanted or not replaceable:
            break
        kind = planted(document.applicant.id_number)
        if wanted[kind] > 0:
            documents[replaceable.pop()] = document
            wanted[kind] -= 1
            forced += 1
    return documents, forced


def planted_cases(
    signed: list[SignedCommitment], first: dict[bytes, str], final: dict[bytes, str]
) -> dict[str, dict[str, Any]]:
    """Per planted case: how many, what the first verification found, where they ended."""
    cases: dict[str, dict[str, Any]] = {}
    for document in signed:
        kind = planted(document.document.applicant.id_number)
        digest = bytes(document.hash())
        case = cases.setdefault(kind, {"planted": 0, "first": Counter(), "final": Counter()})
        case["planted"] += 1
        for found, states in (("first", first), ("final", final)):
            if digest in states:
                case[found][STATE_NAMES.get(states[digest], states[digest])] += 1
    return {
        kind: {**case, "first": dict(case["first"]), "final": dict(case["final"])}
        for kind, case in sorted(cases.items())
    }
