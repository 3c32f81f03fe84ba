"""`commitledger admin`: the contract's admin as a Safe whose owners act M of N.

`handover` gives the ledger's admin role to a Safe (deployed here from the project's own
build of Safe 1.4.1 when owners are named) and renounces it for the admin key; from then
on every binding, grant, revocation and correction is a Safe transaction: `propose` writes it to a
file, each owner `approve`s it on their own machine, and anyone `execute`s it once enough
owners have. `show` reads a proposal without changing it. The Safe's own owners and threshold
change the same way (`propose add-owner|remove-owner|swap-owner|change-threshold`), checked
against the Safe's state on chain before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli import store as cli_store
from api.cli.keys import PassphraseFileOpt
from api.cli.proposed_acts import ACTIONS, OWNER_ACTIONS, ledger_act, owner_change
from api.files import DEFAULT_DEPLOYMENT
from api.output import EXIT_CHECK_FAILED, emit_json, fail, reporting_errors, stdout

if TYPE_CHECKING:
    from api.admin_proposals import Proposal
    from ledger import LedgerContract, SafeAdmin

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DeploymentOpt = Annotated[
    Path, typer.Option("--deployment", help="The deployment file (`deploy` wrote it).")
]
ProposalArg = Annotated[Path, typer.Argument(help="The proposal file.")]
MAX_OWNERS_GIVEN = 50


def register(app: typer.Typer) -> None:
    """Add `admin handover|propose|approve|execute|show|history` to the command line."""
    admin_app = typer.Typer(
        help="The contract's admin as a multi-signature Safe: owners act M of N.",
        no_args_is_help=True,
    )
    admin_app.command("handover")(admin_handover)
    admin_app.command("propose")(admin_propose)
    admin_app.command("approve")(admin_approve)
    admin_app.command("execute")(admin_execute)
    admin_app.command("show")(admin_show)
    admin_app.command("history")(admin_history)
    app.add_typer(admin_app, name="admin")


# ---------------------------------------------------------------------- handover


def admin_handover(
    admin_key: Annotated[
        Path, typer.Option("--admin-key", help="The key that holds the admin role now.")
    ],
    owners: Annotated[
        str | None,
        typer.Option("--owners", help="Deploy a Safe with these owners: ADDRESS,ADDRESS,..."),
    ] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", min=1, help="Owners needed (M of N).")
    ] = None,
    safe: Annotated[
        str | None, typer.Option("--safe", help="Hand over to this Safe, already deployed.")
    ] = None,
    fund: Annotated[
        bool, typer.Option("--fund", help="Fund the admin key from the node (dev chains).")
    ] = False,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give the ledger's admin role to a Safe and renounce it for the admin key, which can
    then change nothing; the deployment file records the Safe."""
    if (safe is None) == (owners is None):
        fail(
            "give --owners with --threshold (a new Safe), or --safe (an existing one)",
            as_json=as_json,
        )
    if owners is not None and threshold is None:
        fail("--owners needs --threshold", as_json=as_json)
    from api.files import read_deployment
    from api.keyfiles import KeyUnlock, load_account
    from ledger import SafeAdmin, hand_over_admin

    with reporting_errors(as_json):
        admin = load_account(admin_key, KeyUnlock.from_env(passphrase_file=passphrase_file))
        path = cli_store.in_data_dir(deployment)
        record = read_deployment(path)
        ledger = _ledger(record, fund=fund)
        if fund:
            ledger.chain.fund(admin.address)
        if owners is not None:
            assert threshold is not None
            the_safe = SafeAdmin.deploy(
                ledger.chain, admin, _owner_list(owners, as_json), threshold
            )
        else:
            assert safe is not None
            the_safe = SafeAdmin(ledger.chain, safe)
        hand_over_admin(ledger, admin, the_safe)
        record["admin_safe"] = the_safe.address
        path.write_text(json.dumps(record, indent=2) + "\n")
        shown = _safe_json(the_safe)
    if as_json:
        emit_json({"ok": True, **shown, "renounced_by": admin.address})
    else:
        stdout.print(
            f"the ledger's admin is now Safe {shown['safe']} ({shown['threshold']} of "
            f"{len(shown['owners'])} owners); {admin.address} renounced the role",
            markup=False,
        )


def _owner_list(owners: str, as_json: bool) -> list[str]:
    listed = [o.strip() for o in owners.split(",") if o.strip()]
    if not 1 <= len(listed) <= MAX_OWNERS_GIVEN:
        fail(f"--owners lists 1 to {MAX_OWNERS_GIVEN} addresses", as_json=as_json)
    return listed


# ---------------------------------------------------------------------- propose


def admin_propose(
    action: Annotated[
        str,
        typer.Argument(
            help="bind, grant, revoke, correct; or add-owner, remove-owner, swap-owner, "
            "change-threshold (the Safe's own owners)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The proposal file to write.")],
    role: Annotated[
        str | None, typer.Option("--role", help="registrar, verifier (or admin).")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="The account's address.")] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="bind, correct: the department's code.")
    ] = None,
    commitment: Annotated[
        str | None, typer.Option("--commitment", help="correct: the commitment hash (0x...).")
    ] = None,
    evidence: Annotated[
        str | None,
        typer.Option("--evidence", help="correct: hash of the ruling behind it (0x...)."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="add-, remove-, swap-owner: the owner's address (EIP-55)."),
    ] = None,
    new_owner: Annotated[
        str | None,
        typer.Option("--new-owner", help="swap-owner: the address that replaces --owner."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            "--threshold",
            help="add-owner, remove-owner (default: kept), change-threshold: approvals needed "
            "afterwards.",
        ),
    ] = None,
    nonce: Annotated[
        int | None,
        typer.Option("--nonce", min=0, help="The Safe nonce (default: the next, from the chain)."),
    ] = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    as_json: JsonOpt = False,
) -> None:
    """Write a proposal of one admin act for the Safe's owners to approve: bind an account
    to a department as registrar or verifier, grant or revoke a role, correct a
    department's published or proposed breach, or change the Safe's own owners or
    threshold (checked against the Safe on chain: nothing is written if it would fail)."""
    from api.admin_proposals import SafeAction, described, new_proposal, write_proposal
    from api.files import read_deployment
    from ledger import SafeAdmin

    if action not in ACTIONS and action not in OWNER_ACTIONS:
        fail(
            f"the action is one of {', '.join([*ACTIONS, *OWNER_ACTIONS])}, not {action!r}",
            as_json=as_json,
        )
    if out.exists():
        fail(f"{out} exists: proposals are never overwritten (another --out)", as_json=as_json)
    ledger_options = (role, account, department, commitment, evidence)
    owner_options = (owner, new_owner, threshold)
    if action in OWNER_ACTIONS and any(o is not None for o in ledger_options):
        fail(f"{action} takes --owner, --new-owner or --threshold only", as_json=as_json)
    if action in ACTIONS and any(o is not None for o in owner_options):
        fail(
            f"--owner, --new-owner and --threshold are for {', '.join(OWNER_ACTIONS)}",
            as_json=as_json,
        )
    call: SafeAction
    with reporting_errors(as_json):
        record = read_deployment(cli_store.in_data_dir(deployment))
        safe_address = _admin_safe(record, as_json)
        if action in OWNER_ACTIONS:
            the_safe = SafeAdmin(_ledger(record).chain, safe_address)
            call = owner_change(the_safe, action, owner, new_owner, threshold, as_json)
            if nonce is None:
                nonce = the_safe.nonce()
        else:
            call = ledger_act(action, role, account, department, commitment, evidence, as_json)
            if nonce is None:
                nonce = SafeAdmin(_ledger(record).chain, safe_address).nonce()
        proposal = new_proposal(
            safe_address, int(record["chain_id"]), str(record["contract"]), call, nonce
        )
        write_proposal(out, proposal, described(call))
    _report(proposal, out, as_json)


# ---------------------------------------------------------------------- approve, show


def admin_approve(
    proposal_file: ProposalArg,
    key: Annotated[Path, typer.Option("--key", help="Your owner account's key.")],
    eth_sign: Annotated[
        bool,
        typer.Option("--eth-sign", help="Sign the eth_sign message of the hash (v 31/32)."),
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a proposal with your owner key, on your own machine (no chain needed): the
    act is read from the call data and the hash recomputed before signing."""
    from api.admin_proposals import approve, described, read_proposal, write_proposal
    from api.keyfiles import KeyUnlock, load_account

    with reporting_errors(as_json):
        proposal = read_proposal(proposal_file)
        owner = load_account(key, KeyUnlock.from_env(passphrase_file=passphrase_file))
        approved = approve(proposal, owner, eth_sign=eth_sign)
        write_proposal(proposal_file, approved, described(approved.action))
    _report(approved, proposal_file, as_json)


def admin_show(proposal_file: ProposalArg, as_json: JsonOpt = False) -> None:
    """What a proposal does and who approved it (every signature checked)."""
    from api.admin_proposals import read_proposal

    with reporting_errors(as_json):
        proposal = read_proposal(proposal_file)
    _report(proposal, proposal_file, as_json)


# ---------------------------------------------------------------------- execute


def admin_execute(
    proposal_file: ProposalArg,
    key: Annotated[
        Path, typer.Option("--key", help="The account that sends it (any; it pays the gas).")
    ],
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Execute an approved proposal through the Safe: refused, with nothing sent, when it is
    for another Safe, chain or nonce, its hash is not the Safe's own, or fewer of the Safe's
    current owners than the threshold approved it (a removed owner's approval does not
    count)."""
    from api.admin_proposals import Proposal, read_proposal
    from api.files import read_deployment
    from api.keyfiles import KeyUnlock, load_account
    from ledger import ContractRevertError, OwnerChange, describe_refusal, pack_signatures

    with reporting_errors(as_json):
        record = read_deployment(cli_store.in_data_dir(deployment))
        proposal = read_proposal(proposal_file)
        ledger = _ledger(record)
        safe = _the_safe(ledger, record, proposal, as_json)
        if safe.transaction_hash_on_chain(proposal.tx) != proposal.tx.hash():
            fail(
                "the Safe's getTransactionHash differs from the hash computed here: nothing was "
                "sent (is the Safe a Safe 1.4.1?)",
                as_json=as_json,
                code=EXIT_CHECK_FAILED,
            )
        owners, threshold = set(safe.owners()), safe.threshold()
        # Only the Safe's owners now count: an owner removed since they approved does not.
        counted = Proposal(proposal.tx, tuple(s for s in proposal.signatures if s.owner in owners))
        strangers = [o for o in proposal.approvers() if o not in owners]
        if len(counted.signatures) < threshold:
            fail(
                f"{len(counted.signatures)} of {threshold} approvals needed: nothing was sent"
                + (f" ({', '.join(strangers)}: not an owner, does not count)" if strangers else ""),
                as_json=as_json,
                code=EXIT_CHECK_FAILED,
                kind="NotEnoughApprovals",
            )
        proposal = counted
        sender = load_account(key, KeyUnlock.from_env(passphrase_file=passphrase_file))
        packed = pack_signatures(proposal.signatures)
        target_abi = safe.abi if isinstance(proposal.action, OwnerChange) else ledger.abi
        refused = safe.refusal(sender.address, proposal.tx, packed, target_abi=target_abi)
        if refused is not None:
            fail(
                f"the Safe refused: {describe_refusal(refused)}; nothing was sent",
                as_json=as_json,
                code=EXIT_CHECK_FAILED,
                kind=refused.error_name,
            )
        try:
            tx_hash = safe.execute(sender, proposal.tx, proposal.signatures)
        except ContractRevertError as exc:
            fail(
                f"the Safe refused: {describe_refusal(exc)}",
                as_json=as_json,
                code=EXIT_CHECK_FAILED,
            )
    if as_json:
        emit_json(
            {
                "ok": True,
                "transaction": "0x" + tx_hash.hex(),
                **_proposal_json(proposal),
                "not_counted": strangers,
            }
        )
    else:
        stdout.print(
            f"executed {proposal.action.function} through Safe {safe.address} with "
            f"{len(proposal.signatures)} approvals: 0x{tx_hash.hex()}",
            markup=False,
        )


def _the_safe(
    ledger: LedgerContract, record: dict[str, Any], proposal: Proposal, as_json: bool
) -> SafeAdmin:
    from ledger import SafeAdmin

    safe = SafeAdmin(ledger.chain, _admin_safe(record, as_json))
    tx = proposal.tx
    if (
        tx.safe != safe.address
        or tx.chain_id != ledger.chain.chain_id
        or tx.to not in (ledger.address, safe.address)
    ):
        fail(
            f"the proposal is for Safe {tx.safe} acting on {tx.to} (chain {tx.chain_id}), not "
            f"this deployment's Safe {safe.address} and ledger {ledger.address}",
            as_json=as_json,
        )
    current = safe.nonce()
    if tx.nonce != current:
        fail(
            f"the proposal carries Safe nonce {tx.nonce} but the Safe is at {current}: "
            "propose it again at the current nonce",
            as_json=as_json,
            code=EXIT_CHECK_FAILED,
        )
    return safe


# ---------------------------------------------------------------------- history


def admin_history(
    from_block: Annotated[
        int | None,
        typer.Option("--from-block", min=0, help="First block (default: the deployment's)."),
    ] = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    as_json: JsonOpt = False,
) -> None:
    """Every admin act the Safe executed, oldest first, with the owners who approved it,
    read from the chain alone (SafeL2's events); a change of the Safe's owners with what its
    AddedOwner, RemovedOwner and ChangedThreshold events say changed; other calls are named
    by their target only."""
    from api.admin_proposals import executed_acts
    from api.files import read_deployment
    from ledger import SafeAdmin

    with reporting_errors(as_json):
        record = read_deployment(cli_store.in_data_dir(deployment))
        ledger = _ledger(record)
        safe = SafeAdmin(ledger.chain, _admin_safe(record, as_json))
        start = from_block if from_block is not None else int(record.get("deployed_at_block", 0))
        acts = executed_acts(
            safe.executions(from_block=start),
            ledger.address,
            safe.owner_events(from_block=start),
        )
    if as_json:
        emit_json({"ok": True, "safe": safe.address, "executed": acts})
        return
    for act in acts:
        words = act["action"].get("summary") or " ".join(
            f"{k}={v}" for k, v in act["action"].items()
        )
        if "changes" in act:
            done = [f"{k.replace('_', ' ')} {v}" for c in act["changes"] for k, v in c.items()]
            words += f" (the Safe logged: {', '.join(done) or 'no change'})"
        stdout.print(
            f"block {act['block']} nonce {act['nonce']}: {words}; approved by "
            f"{', '.join(act['approved_by'])} ({act['transaction']})",
            markup=False,
        )
    stdout.print(f"{len(acts)} admin acts executed by Safe {safe.address}", markup=False)


# ---------------------------------------------------------------------- shared


def _ledger(record: dict[str, Any], *, fund: bool = False) -> LedgerContract:
    from ledger import Chain, LedgerContract

    chain = Chain.connect(str(record["rpc"]), kind="anvil" if fund else "rpc")
    return LedgerContract(chain, str(record["contract"]))


def _admin_safe(record: dict[str, Any], as_json: bool) -> str:
    safe = record.get("admin_safe")
    if not isinstance(safe, str):
        fail(
            "the deployment has no admin Safe: run `commitledger admin handover` first",
            as_json=as_json,
        )
    return safe


def _proposal_json(proposal: Proposal) -> dict[str, Any]:
    from api.admin_proposals import described

    document = proposal.to_json_obj(described(proposal.action))
    return {
        "safe": document["safe"],
        "safe_tx_hash": document["safe_tx_hash"],
        "nonce": proposal.tx.nonce,
        "action": document["action"],
        "approved_by": proposal.approvers(),
    }


def _safe_json(safe: SafeAdmin) -> dict[str, Any]:
    return {
        "safe": safe.address,
        "version": safe.version(),
        "owners": safe.owners(),
        "threshold": safe.threshold(),
    }


def _report(proposal: Proposal, path: Path, as_json: bool) -> None:
    shown = _proposal_json(proposal)
    if as_json:
        emit_json({"ok": True, "proposal": str(path), **shown})
        return
    action = dict(shown["action"])
    if "department_code" in action:
        action["department"] = action.pop("department_code")
    words = action.get("summary") or " ".join(
        f"{k}={v}" for k, v in action.items() if k != "function"
    )
    approvers = ", ".join(shown["approved_by"]) or "nobody yet"
    stdout.print(
        f"{path}: {action['function']} {words} through Safe {shown['safe']} at nonce "
        f"{shown['nonce']} (hash {shown['safe_tx_hash']}); approved by {approvers}",
        markup=False,
    )
