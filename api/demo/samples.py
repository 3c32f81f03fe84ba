"""Sample applicants and their commitments across the catalog's matters, for demos and benches."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

from api.demo.sample_data import employer_uscc_for
from ledger import Applicant, Claim, Commitment, hex32, make_resident_id, make_uscc, new_salt
from verifier import Catalog, ClaimSpec, Matter, default_catalog

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢"
    "宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉宇浩然子轩雨涵"
_FOREIGN = ("SMITH JOHN", "MÜLLER ANNA", "TANAKA YUKI", "GARCIA LUIS", "KIM MINJI", "DUBOIS CLAIRE")
_ORG_SUFFIX = ("餐饮管理有限公司", "食品有限公司", "商贸有限公司", "小吃店")
_DISTRICTS = ("110101", "110102", "110105", "110106", "110108")
# The matters the demo and the tests' samples cycle through unless told otherwise: the first
# five shipped, in this order, so that a seed gives the same applicants and outcomes as
# before the catalog grew (`matters=` picks others: every matter of the catalog, say).
DEMO_MATTERS = ("BJ-HRSS-0001", "BJ-HRSS-0002", "BJ-HRSS-0003", "BJ-HRSS-0004", "BJ-SAMR-0001")


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))


def _applicant(matter: Matter, rng: random.Random, serial: int) -> Applicant:
    # A licence to do business is applied for by an organisation (as are all of BJ-SAMR's).
    if matter.department == "BJ-SAMR" or matter.commitment_type == "approval_replacing":
        body = f"{serial:08d}"[-8:]
        name = "北京" + _person_name(rng) + rng.choice(_ORG_SUFFIX)
        return Applicant(
            kind="organisation",
            name=name,
            id_type="uscc",
            id_number=make_uscc(rng.choice(_DISTRICTS), body),
        )
    if matter.code == "BJ-HRSS-0002":
        passport = f"E{rng.randrange(10**7, 10**8)}"
        return Applicant(
            kind="person", name=rng.choice(_FOREIGN), id_type="passport", id_number=passport
        )
    birth = date(1975, 1, 1) + timedelta(days=rng.randrange(0, 365 * 25))
    region = rng.choice(("110101", "130102", "370102", "410105", "510104"))
    return Applicant(
        kind="person",
        name=_person_name(rng),
        id_type="resident_id",
        id_number=make_resident_id(region, birth, rng.randrange(0, 1000)),
    )


def _claim(spec: ClaimSpec, applicant: Applicant) -> Claim:
    value = spec.value
    if value is None:  # the applicant states it: here, the employer the records also name
        if spec.key != "employer_uscc":
            raise ValueError(f"sample applicants state only employer_uscc, not {spec.key}")
        value = employer_uscc_for(applicant.id_number)
    return Claim(key=spec.key, op=spec.op, value=value)


def sample_commitment(
    matter: Matter, serial: int, rng: random.Random, signed_at: datetime
) -> Commitment:
    """One applicant's commitment to `matter`, with a fresh random salt."""
    applicant = _applicant(matter, rng, serial)
    return Commitment(
        schema_version=1,
        code=f"110105{signed_at:%Y%m%d}{serial % 1_000_000:06d}",
        matter_code=matter.code,
        department=matter.department,
        applicant=applicant,
        claims=[_claim(spec, applicant) for spec in matter.claims],
        channel=rng.choice(("online", "online", "counter")),
        signed_at=signed_at,
        notice_hash=hex32(matter.notice_hash()),
        salt=new_salt(),
    )


def sample_commitments(
    count: int,
    *,
    seed: int = 2026,
    catalog: Catalog | None = None,
    department: str | None = None,
    start: datetime | None = None,
    matters: Sequence[str] | None = None,
) -> Iterator[Commitment]:
    """`count` commitments spread over `matters`, only one department's if named (default
    DEMO_MATTERS, or every matter of a department or catalog that has none of them)."""
    catalog = catalog or default_catalog()
    chosen = _chosen_matters(catalog, DEMO_MATTERS if matters is None else matters)
    chosen = [m for m in chosen if department in (None, m.department)]
    if matters is None and not chosen:  # a department without the demo's: its own matters
        chosen = [m for m in catalog.matters if department in (None, m.department)]
    if not chosen:
        raise ValueError(f"no matter to sample: none of {department or 'any department'}")
    rng = random.Random(seed)  # noqa: S311 - sample names, not secrets (salts use secrets)
    start = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    for serial in range(1, count + 1):
        signed_at = start + timedelta(seconds=serial * 7)
        yield sample_commitment(chosen[serial % len(chosen)], serial, rng, signed_at)


def _chosen_matters(catalog: Catalog, codes: Sequence[str]) -> list[Matter]:
    """The catalog's matters named in `codes`, in that order (codes it lacks are skipped)."""
    known = {matter.code: matter for matter in catalog.matters}
    return [known[code] for code in codes if code in known]
