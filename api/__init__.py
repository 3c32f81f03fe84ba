"""What people and programs talk to: the `commitledger` command line (`api.cli`), the HTTP
service (`api.service`) and the demo with its sample department (`api.demo`).

Imports point down only: api uses verifier and ledger. This package imports nothing itself,
so a command pays only for what it uses.
"""
