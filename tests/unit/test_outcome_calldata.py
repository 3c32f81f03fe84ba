"""recordOutcomes call data written directly equals eth_abi's, byte for byte."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Hash32, OutcomeItem, Status, encode_outcomes

SIGNATURE = "recordOutcomes((bytes32,uint8,bytes32,bytes32,bytes32[])[])"
WORD = st.binary(min_size=32, max_size=32).map(Hash32)
ITEMS = st.lists(
    st.builds(
        OutcomeItem,
        WORD,
        st.sampled_from(list(Status)),
        WORD,
        WORD,
        st.lists(WORD, max_size=20).map(tuple),
    ),
    max_size=12,
)


def _by_eth_abi(items: list[OutcomeItem]) -> str:
    values = [(i.commitment, int(i.outcome), i.evidence, i.root, list(i.proof)) for i in items]
    types = ["(bytes32,uint8,bytes32,bytes32,bytes32[])[]"]
    selector = function_signature_to_4byte_selector(SIGNATURE)
    return "0x" + (selector + abi_encode(types, [values])).hex()


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(ITEMS)
def test_encode_outcomes_equals_eth_abi(items: list[OutcomeItem]) -> None:
    assert encode_outcomes(items) == _by_eth_abi(items)


def test_a_short_hash_is_refused_not_padded() -> None:
    word = Hash32(bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        encode_outcomes([OutcomeItem(word, Status.KEPT, word, word, (Hash32(b"\x01" * 31),))])
    with pytest.raises(ValueError, match="32 bytes"):
        encode_outcomes([OutcomeItem(Hash32(b"\x01" * 33), Status.KEPT, word)])
