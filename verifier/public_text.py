"""Public text in natural Chinese: breach facts per claim, severity, document numbers.

Facts are written from each comparison's structured parts (claim key, operator, claimed and
observed value), never from the English `detail`, and never quote free text from either side
(it may be personal data): numbers, dates and month counts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from verifier.departments import default_departments

if TYPE_CHECKING:
    from verifier.catalog import ClaimSpec, Matter, Severity
    from verifier.rules import Comparison

SEVERITY_ZH: dict[str, str] = {"minor": "轻微失信", "general": "一般失信", "serious": "严重失信"}

_OP_ZH: dict[str, str] = {
    ">=": "不少于",
    "<=": "不超过",
    ">": "多于",
    "<": "少于",
    "==": "为",
    "!=": "不为",
    "in": "属于承诺的范围",
}

# Who holds the data a claim is checked against, by the data source's prefix.
_HOLDERS: tuple[tuple[str, str], ...] = (
    ("police_", "公安机关"),
    ("hrss_", "人力资源社会保障部门"),
    ("education_", "教育部门"),
    ("employer_", "用人单位登记信息"),
    ("housing_", "住房城乡建设部门"),
    ("samr_", "市场监管部门"),
)

# What the record shows when a yes/no claim committed as true is found false, per claim.
_FALSE_WHEN_TRUE_CLAIMED: dict[str, str] = {
    "no_criminal_record": "有犯罪记录",
    "holds_residence_permit": "未持有北京市居住证",
    "below_retirement_age": "已达到法定退休年龄",
    "insured_in_beijing": "未在本市参加社会保险",
    "diploma_and_degree_held": "未取得毕业证和学位证",
    "food_safety_officer_certified": "未配备持证食品安全管理人员",
}


def holder_of(source: str) -> str:
    """Who holds the data of `source`, as the public text names it."""
    for prefix, holder in _HOLDERS:
        if source.startswith(prefix):
            return holder
    return "核查部门"


def claim_fact(spec: ClaimSpec, comparison: Comparison) -> str:
    """One disagreeing claim as a sentence: 无犯罪记录：公安机关记录显示有犯罪记录，与承诺不符。"""
    holder = holder_of(spec.source)
    claimed = comparison.claimed if isinstance(comparison.claimed, Mapping) else {}
    op = str(claimed.get("op", spec.op))
    value = claimed.get("value", spec.value)
    observed = comparison.observed
    shown: str
    if spec.type == "boolean":
        negative = _FALSE_WHEN_TRUE_CLAIMED.get(spec.key)
        if value is True and negative is not None:
            shown = f"{holder}记录显示{negative}"
        else:
            shown = f"{holder}记录显示所承诺的情况不属实"
    elif spec.type == "consecutive_months" and isinstance(observed, Mapping):
        months = observed.get("consecutive_months")
        shown = f"{holder}记录显示连续{months}个月，承诺{_OP_ZH.get(op, op)}{value}个月"
    elif spec.type in ("number", "date") and isinstance(observed, int | float | str):
        shown = f"{holder}记录为{_plain(observed)}，承诺{_OP_ZH.get(op, op)}{_plain(value)}"
    elif spec.type == "set":
        shown = f"{holder}记录不在承诺的范围内"
    else:  # text, or a value that could not be read: never quoted
        shown = f"{holder}记录与承诺的内容不一致"
    return f"{spec.description}：{shown}，与承诺不符。"


def breach_facts(comparisons: Iterable[Comparison], matter: Matter | None) -> str | None:
    """The facts of the claims the department's data contradicted, one sentence each (None:
    no comparison disagreed)."""
    specs = {spec.key: spec for spec in matter.claims} if matter is not None else {}
    parts = []
    for comparison in comparisons:
        if comparison.verdict != "disagree":
            continue
        spec = specs.get(comparison.key)
        if spec is None:
            parts.append(f"承诺事项“{comparison.key}”与核查记录不符。")
        else:
            parts.append(claim_fact(spec, comparison))
    return "".join(parts) or None


def severity_text(severity: Severity, months_published: int) -> str:
    """The severity and how long it is published: 一般失信，公示12个月."""
    return f"{SEVERITY_ZH.get(severity, severity)}，公示{months_published}个月"


def document_number(department: str, year: int, serial: int | str) -> str:
    """A decision's document number under the department's short name:
    京人社承诺〔2026〕000273号 (a department the registry lacks: 京承诺〔2026〕…号)."""
    known = default_departments().get(department)
    short = known.short_name if known is not None else "京"
    number = f"{serial:06d}" if isinstance(serial, int) else serial
    return f"{short}承诺〔{year}〕{number}号"


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
