"""What people type into the public search, made into what the records hold: matter and
department names into their codes (through the catalog), a full ID or credit code into the
applicant fingerprints it may have (keyed hashes: the ID itself is never stored nor logged)."""

from __future__ import annotations

import functools
from typing import NamedTuple, get_args

from ledger import IdType, LedgerError, Vault, validate_id_number
from verifier import Catalog, default_catalog


@functools.cache
def _catalog() -> Catalog:
    return default_catalog()


def _fold(text: str) -> str:
    return "".join(text.split()).casefold()


class _Folded(NamedTuple):
    """A catalog's codes and names folded once (a search folded every matter's again)."""

    exact: dict[str, str]  # a folded code or name -> its code (the first in the catalog's order)
    names: tuple[tuple[str, tuple[str, ...]], ...]  # a code and its folded names


def _fold_matters(catalog: Catalog) -> _Folded:
    exact: dict[str, str] = {}
    names = []
    for matter in catalog.matters:
        for key in (matter.code, matter.name, matter.name_en):
            exact.setdefault(_fold(key), matter.code)
        names.append((matter.code, (_fold(matter.name), _fold(matter.name_en))))
    return _Folded(exact, tuple(names))


def _fold_departments(catalog: Catalog) -> _Folded:
    named = {m.department: m.department_name for m in catalog.matters}
    exact: dict[str, str] = {}
    for code, name in named.items():
        exact.setdefault(_fold(code), code)
        exact.setdefault(_fold(name), code)
    return _Folded(exact, tuple((code, (_fold(name),)) for code, name in named.items()))


@functools.cache
def _default_matters() -> _Folded:
    return _fold_matters(_catalog())


@functools.cache
def _default_departments() -> _Folded:
    return _fold_departments(_catalog())


def _code_named(text: str, folded: _Folded) -> str:
    wanted = _fold(text)
    code = folded.exact.get(wanted)
    if code is not None:
        return code
    partly = {code for code, names in folded.names if any(wanted in name for name in names)}
    return partly.pop() if len(partly) == 1 else text


def matter_code(text: str | None, catalog: Catalog | None = None) -> str | None:
    """The matter code `text` names: a code as is, or a matter's name (Chinese or English,
    whole or a part that names one matter only); other text is left as typed."""
    if text is None:
        return None
    return _code_named(text, _default_matters() if catalog is None else _fold_matters(catalog))


def department_code(text: str | None, catalog: Catalog | None = None) -> str | None:
    """The department code `text` names: a code as is, or a department's name (whole, or a
    part that names one department only); other text is left as typed."""
    if text is None:
        return None
    folded = _default_departments() if catalog is None else _fold_departments(catalog)
    return _code_named(text, folded)


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
