"""Compile CommitmentLedger and the Safe admin's contracts into ledger/artifacts/; --check
fails if any committed artifact is stale."""

from __future__ import annotations

import argparse
import sys

from ledger import stale_fields, stale_safe_fields, write_artifact, write_safe_artifacts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed artifact; write nothing"
    )
    args = parser.parse_args()
    if args.check:
        stale = {"CommitmentLedger": stale_fields(), **stale_safe_fields()}
        stale = {name: fields for name, fields in stale.items() if fields}
        for name, fields in stale.items():
            print(
                f"{name} artifact is stale ({', '.join(fields)} differ): run `make artifact` "
                "and commit ledger/artifacts/",
                file=sys.stderr,
            )
        if stale:
            return 1
        print("contract artifacts are up to date")
        return 0
    artifacts = [write_artifact(), *write_safe_artifacts().values()]
    for artifact in artifacts:
        print(
            f"wrote {artifact['contractName']}: sources {artifact['sourcesHash']}, "
            f"solc {artifact['compiler']['version']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
