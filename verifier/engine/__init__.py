"""The verification run: deciding due commitments (`decide`, with the worker processes' entry
points in `worker`), sending outcomes and breaches on chain (`sending`), orchestrated by
`run.VerificationEngine`, built by `run.engine_for` from a `department.Department`; `summary`
counts what a run did. A department's own actions (withdraw, decide, repair, annul, ...) are
`actions.DepartmentActions`, which builds no run."""
