"""Compile contracts/CommitmentLedger.sol into ledger/artifacts/; --check fails if stale."""

from __future__ import annotations

import argparse
import sys

from ledger import stale_fields, write_artifact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed artifact; write nothing"
    )
    args = parser.parse_args()
    if args.check:
        stale = stale_fields()
        if stale:
            print(
                f"contract artifact is stale ({', '.join(stale)} differ): run `make artifact` "
                "and commit ledger/artifacts/",
                file=sys.stderr,
            )
            return 1
        print("contract artifact is up to date")
        return 0
    artifact = write_artifact()
    print(
        f"wrote artifact: sources {artifact['sourcesHash']}, solc {artifact['compiler']['version']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
