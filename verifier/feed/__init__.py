"""The credit platform's feed: records built from confirmed chain events (`builder`), stored in
one gapless sequence (`store`, `tables`), paged by signed cursors (`cursor`), kept current by
the follower (`follower`), pushed to subscribers (`subscribers`, `webhooks`) and checked against
the chain (`check`). It sits above the rest of the verifier: nothing else in verifier imports it."""
