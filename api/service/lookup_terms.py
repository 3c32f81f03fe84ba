"""What people type into the public search, made into what the records hold: matter and
department names into their codes (through the catalog), a full ID or credit code into the
applicant fingerprints it may have (keyed hashes: the ID itself is never stored nor logged)."""

from __future__ import annotations

import functools
from typing import get_args

from ledger import IdType, LedgerError, Vault, validate_id_number
from verifier import Catalog, default_catalog


@functools.cache
def _catalog() -> Catalog:
    return default_catalog()


def _fold(text: str) -> str:
    return "".join(text.split()).casefold()


def matter_code(text: str | None, catalog: Catalog | None = None) -> str | None:
    """The matter code `text` names: a code as is, or a matter's name (Chinese or English,
    whole or a part that names one matter only); other text is left as typed."""
    if text is None:
        return None
    matters = (catalog or _catalog()).matters
    wanted = _fold(text)
    for matter in matters:
        if wanted in (_fold(matter.code), _fold(matter.name), _fold(matter.name_en)):
            return matter.code
    partly = {m.code for m in matters if wanted in _fold(m.name) or wanted in _fold(m.name_en)}
    return partly.pop() if len(partly) == 1 else text


def department_code(text: str | None, catalog: Catalog | None = None) -> str | None:
    """The department code `text` names: a code as is, or a department's name (whole, or a
    part that names one department only); other text is left as typed."""
    if text is None:
        return None
    names = {m.department: m.department_name for m in (catalog or _catalog()).matters}
    wanted = _fold(text)
    for code, name in names.items():
        if wanted in (_fold(code), _fold(name)):
            return code
    partly = {code for code, name in names.items() if wanted in _fold(name)}
    return partly.pop() if len(partly) == 1 else text


def identity_fingerprints(vault: Vault | None, text: str | None) -> tuple[bytes, ...]:
    """The applicant fingerprints of `text` read as each type of full ID or code it is well
    formed as (none for a masked or malformed one, or without the vault's key)."""
    if vault is None or text is None or "*" in text:
        return ()
    number = text.strip().upper()
    prints = []
    for id_type in get_args(IdType):
        try:
            validate_id_number(id_type, number)
        except (LedgerError, ValueError):
            continue
        prints.append(vault.fingerprint(id_type, number))
    return tuple(prints)
