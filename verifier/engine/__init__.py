"""The verification run: deciding due commitments (`decide`, with the worker processes' entry
points in `worker`), sending outcomes and breaches on chain (`sending`), orchestrated by
`run.VerificationEngine`; `summary` counts what a run did."""
