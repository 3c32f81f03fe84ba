"""The verifier: the matter catalog and sample applicants (verification engine to come).

Imports point down only: verifier uses ledger, never api.
"""

from .catalog import Catalog, ClaimSpec, Matter, Notice, default_catalog, load_catalog
from .feed import FeedRecord, verify_record
from .feed_check import CheckReport, check_feed
from .feed_follower import FeedFollower
from .feed_store import FeedStore
from .feed_subscribers import Subscriptions
from .samples import sample_commitment, sample_commitments
from .webhooks import DeliveryPolicy, WebhookDeliverer

__all__ = [
    "Catalog",
    "CheckReport",
    "ClaimSpec",
    "DeliveryPolicy",
    "FeedFollower",
    "FeedRecord",
    "FeedStore",
    "Matter",
    "Notice",
    "Subscriptions",
    "WebhookDeliverer",
    "check_feed",
    "default_catalog",
    "load_catalog",
    "sample_commitment",
    "sample_commitments",
    "verify_record",
]
