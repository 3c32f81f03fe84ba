"""Commitment documents as plain JSON values, valid ones and ways to change them, for tests."""

from __future__ import annotations

import copy
from typing import Any


def person_commitment() -> dict[str, Any]:
    """A valid commitment of a person (resident ID), every claim op used once."""
    return {
        "schema_version": 1,
        "code": "11000020240301000001",
        "matter_code": "BJ-HRSS-JFLH-001",
        "department": "BJ-HRSS",
        "applicant": {
            "kind": "person",
            "name": "张三",
            "id_type": "resident_id",
            "id_number": "11010519491231002X",
        },
        "claims": [
            {"key": "social_insurance_consecutive_months", "op": ">=", "value": 84},
            {"key": "has_criminal_record", "op": "==", "value": False},
            {"key": "residence_district", "op": "in", "value": ["dongcheng", "xicheng"]},
            {"key": "graduation_date", "op": "<=", "value": "2024-07-01"},
            {"key": "education_level", "op": "!=", "value": "none"},
        ],
        "channel": "online",
        "signed_at": "2024-03-01T02:00:00Z",
        "notice_hash": "0x" + "ab" * 32,
        "salt": "0x" + "5a" * 32,
    }


def organisation_commitment() -> dict[str, Any]:
    """A valid commitment of an organisation (credit code)."""
    obj = person_commitment()
    obj["applicant"] = {
        "kind": "organisation",
        "name": "华为技术有限公司",
        "id_type": "uscc",
        "id_number": "914403001922038216",
    }
    obj["claims"] = [{"key": "registered_capital_yuan", "op": ">", "value": 1_000_000}]
    obj["channel"] = "counter"
    return obj


def with_change(obj: dict[str, Any], path: list[str | int], value: object) -> dict[str, Any]:
    """A deep copy of `obj` with the value at `path` (keys and indexes) set to `value`."""
    changed = copy.deepcopy(obj)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed
