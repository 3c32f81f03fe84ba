"""The credit platform's feed: records built from confirmed chain events (`builder`; their
details from the store, `details`), given their places in one gapless sequence by a
sequencer and signed by their own departments (`store`, `tables`; served up to the published
head), paged by signed cursors (`cursor`), kept current by the follower (`follower`), pushed
to subscribers (`subscribers`, `webhooks`; the government scope's sealed identities in
`sharing`) and checked against the chain (`check`). It sits above the rest of the verifier:
nothing else in verifier imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from verifier.feed.check import check_feed
    from verifier.feed.cursor import MAX_CURSOR_CHARS, CursorCodec
    from verifier.feed.follower import FeedFollower, StepResult
    from verifier.feed.records import (
        COMMITMENT_TYPES,
        COMMITTER_CATEGORIES,
        EN_VALUES,
        FULFILMENT_ZH,
        KIND_OF_STATUS,
        KIND_ZH,
        SCHEMA_FILE,
        SCOPE_OF_KIND,
        SCOPE_ZH,
        VISIBLE_SCOPES,
        ZH_LABELS,
        AdminApproval,
        ConsumerScope,
        Details,
        FeedRecord,
        chain_facts,
        committer_category,
        department_codes,
        record_schema,
        sign_record,
        verify_record,
    )
    from verifier.feed.sharing import (
        GOVERNMENT_SCOPE,
        SEALED_IDENTITY,
        SealedIdentityError,
        SharedIdentity,
        key_id,
        load_platform_private_key,
        new_platform_key,
        open_identity,
        open_record_identity,
        parse_platform_key,
        private_key_pem,
        seal_identity,
        without_sealed_identity,
    )
    from verifier.feed.store import FeedStore, PendingEvent, Sequenced, assigned_in, head_in
    from verifier.feed.subscribers import Subscriptions, shared_page
    from verifier.feed.tables import feed_meta, feed_records, feed_subscribers
    from verifier.feed.webhooks import (
        SIGNATURE_HEADER,
        DeliveryPolicy,
        check_url,
        new_secret,
        sign_body,
        verify_body,
    )

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "AdminApproval": "verifier.feed.records",
    "assigned_in": "verifier.feed.store",
    "chain_facts": "verifier.feed.records",
    "check_feed": "verifier.feed.check",
    "check_url": "verifier.feed.webhooks",
    "COMMITMENT_TYPES": "verifier.feed.records",
    "COMMITTER_CATEGORIES": "verifier.feed.records",
    "committer_category": "verifier.feed.records",
    "ConsumerScope": "verifier.feed.records",
    "CursorCodec": "verifier.feed.cursor",
    "DeliveryPolicy": "verifier.feed.webhooks",
    "department_codes": "verifier.feed.records",
    "Details": "verifier.feed.records",
    "EN_VALUES": "verifier.feed.records",
    "feed_meta": "verifier.feed.tables",
    "feed_records": "verifier.feed.tables",
    "feed_subscribers": "verifier.feed.tables",
    "FeedFollower": "verifier.feed.follower",
    "FeedRecord": "verifier.feed.records",
    "FeedStore": "verifier.feed.store",
    "FULFILMENT_ZH": "verifier.feed.records",
    "GOVERNMENT_SCOPE": "verifier.feed.sharing",
    "head_in": "verifier.feed.store",
    "key_id": "verifier.feed.sharing",
    "KIND_OF_STATUS": "verifier.feed.records",
    "KIND_ZH": "verifier.feed.records",
    "load_platform_private_key": "verifier.feed.sharing",
    "MAX_CURSOR_CHARS": "verifier.feed.cursor",
    "new_platform_key": "verifier.feed.sharing",
    "new_secret": "verifier.feed.webhooks",
    "open_identity": "verifier.feed.sharing",
    "open_record_identity": "verifier.feed.sharing",
    "parse_platform_key": "verifier.feed.sharing",
    "PendingEvent": "verifier.feed.store",
    "private_key_pem": "verifier.feed.sharing",
    "record_schema": "verifier.feed.records",
    "SCHEMA_FILE": "verifier.feed.records",
    "SCOPE_OF_KIND": "verifier.feed.records",
    "SCOPE_ZH": "verifier.feed.records",
    "seal_identity": "verifier.feed.sharing",
    "SEALED_IDENTITY": "verifier.feed.sharing",
    "SealedIdentityError": "verifier.feed.sharing",
    "Sequenced": "verifier.feed.store",
    "SharedIdentity": "verifier.feed.sharing",
    "sign_body": "verifier.feed.webhooks",
    "sign_record": "verifier.feed.records",
    "SIGNATURE_HEADER": "verifier.feed.webhooks",
    "shared_page": "verifier.feed.subscribers",
    "StepResult": "verifier.feed.follower",
    "Subscriptions": "verifier.feed.subscribers",
    "verify_body": "verifier.feed.webhooks",
    "verify_record": "verifier.feed.records",
    "VISIBLE_SCOPES": "verifier.feed.records",
    "without_sealed_identity": "verifier.feed.sharing",
    "ZH_LABELS": "verifier.feed.records",
}

__all__ = [
    "COMMITMENT_TYPES",
    "COMMITTER_CATEGORIES",
    "EN_VALUES",
    "FULFILMENT_ZH",
    "GOVERNMENT_SCOPE",
    "KIND_OF_STATUS",
    "KIND_ZH",
    "MAX_CURSOR_CHARS",
    "SCHEMA_FILE",
    "SCOPE_OF_KIND",
    "SCOPE_ZH",
    "SEALED_IDENTITY",
    "SIGNATURE_HEADER",
    "VISIBLE_SCOPES",
    "ZH_LABELS",
    "AdminApproval",
    "ConsumerScope",
    "CursorCodec",
    "DeliveryPolicy",
    "Details",
    "FeedFollower",
    "FeedRecord",
    "FeedStore",
    "PendingEvent",
    "SealedIdentityError",
    "Sequenced",
    "SharedIdentity",
    "StepResult",
    "Subscriptions",
    "assigned_in",
    "chain_facts",
    "check_feed",
    "check_url",
    "committer_category",
    "department_codes",
    "feed_meta",
    "feed_records",
    "feed_subscribers",
    "head_in",
    "key_id",
    "load_platform_private_key",
    "new_platform_key",
    "new_secret",
    "open_identity",
    "open_record_identity",
    "parse_platform_key",
    "private_key_pem",
    "record_schema",
    "seal_identity",
    "shared_page",
    "sign_body",
    "sign_record",
    "verify_body",
    "verify_record",
    "without_sealed_identity",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
