"""The verifier's records in the store: verifications and their states (`verifications`),
published breach records (`breach_store`), the public search (`search`), their tables and
migrations (`tables`), behind one facade (`facade.VerifierRecords`)."""
