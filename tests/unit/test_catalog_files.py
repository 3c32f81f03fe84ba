"""Catalogs per department: loading a directory, its errors, `catalog check`, the shipped
matters and the sample data that answers them, and a new department's file put in service."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from support.deployment import Deployment
from support.service_world import open_service, post_signed
from support.verify_cli import cli, explain
from typer.testing import Result

from api.demo import planted, records, sample_commitment
from ledger import InvalidDocumentError, hex32, sign_commitment
from verifier import (
    MATTERS_DIR,
    CatalogError,
    Subject,
    catalog_dir,
    compare,
    configure_catalog_dir,
    default_catalog,
    load_catalogs,
    load_department_catalogs,
)

# The five matters shipped before the catalog was split per department: commitments and
# tests hold these notice hashes, so the split must not change one of them.
OLD_NOTICE_HASHES = {
    "BJ-HRSS-0001": "8b1330a4c84c96f69eb74d060d23ab798e251b2fcfbc084eb324756d1bb674f2",
    "BJ-HRSS-0002": "7173dc5658665e76bc0dadd8322b8676a49705a89b55bfa80142deeff976b55e",
    "BJ-HRSS-0003": "71d6c545fd93e29b8d4e2d467d3c4679678cb71565ed7e7534527012f7b25668",
    "BJ-HRSS-0004": "65a485d78e5666f9b7b6634f4c586e4058656b9212d4738b75e3ea7f09c6fa52",
    "BJ-SAMR-0001": "32040402eff30a01510250dba1b67ceea22da141600497fcafa27ac147439d20",
}
TAX = "BJ-TAX"
TAX_MATTER = "BJ-TAX-0001"


@pytest.fixture(autouse=True)
def configured_catalog_kept() -> Iterator[None]:
    """Each test may point the process at another directory: point it back afterwards."""
    before = catalog_dir()
    yield
    configure_catalog_dir(None if before == MATTERS_DIR else before)


def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped catalog directory to edit."""
    directory = tmp_path / "catalog"
    shutil.copytree(MATTERS_DIR, directory)
    return directory


def read(directory: Path, department: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / f"{department}.json").read_text("utf-8"))
    return data


def write(directory: Path, department: str, data: dict[str, Any], name: str = "") -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    (directory / (name or f"{department}.json")).write_text(text, encoding="utf-8")


def tax_catalog() -> dict[str, Any]:
    """A department the code has never heard of, with one matter on an existing source."""
    return {
        "department": TAX,
        "catalog_version": 1,
        "region": "110000",
        "matters": [
            {
                "code": TAX_MATTER,
                "name": "纳税信用修复申请",
                "name_en": "Tax credit repair application",
                "department": TAX,
                "department_name": "国家税务总局北京市税务局",
                "legal_basis": "《纳税信用管理办法》",
                "notice": {
                    "version": 1,
                    "valid_from": "2026-01-01",
                    "conditions": "有固定的经营场所。",
                    "liability": "承诺内容不实的，撤销修复结果，并记入失信记录。",
                },
                "claims": [
                    {
                        "key": "premises_area_sqm",
                        "type": "number",
                        "op": ">=",
                        "value": 30,
                        "description": "经营场所面积（平方米）",
                        "source": "housing_registry",
                    }
                ],
                "conditions": [{"text": "有固定的经营场所", "claims": ["premises_area_sqm"]}],
                "verification_window_days": 30,
                "rectification_window_days": 15,
                "severity": "minor",
                "commitment_type": "approval_replacing",
            }
        ],
    }


def refusal(directory: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalogs(directory)
    return str(caught.value)


# ---------------------------------------------------------------------- the shipped catalog


def test_the_shipped_directory_has_one_versioned_file_per_department() -> None:
    departments = load_department_catalogs(MATTERS_DIR)
    assert [d.file for d in departments] == sorted(p.name for p in MATTERS_DIR.glob("*.json"))
    for department in departments:
        assert department.file == f"{department.department}.json"
        assert department.catalog_version >= 1
        assert {m.department for m in department.matters} == {department.department}
    assert {d.department for d in departments} >= {
        "BJ-HRSS",
        "BJ-SAMR",
        "BJ-EDU",
        "BJ-HOUSING",
        "BJ-HEALTH",
    }


def test_the_split_kept_the_five_old_notice_hashes() -> None:
    catalog = default_catalog()
    for code, digest in OLD_NOTICE_HASHES.items():
        assert catalog.matter(code).notice_hash().hex() == digest


def test_hrss_has_its_fifth_batch_matters() -> None:
    names = {m.name for m in default_catalog().matters if m.department == "BJ-HRSS"}
    for wanted in ("积分落户", "外国人来华工作许可", "非北京生源毕业生", "社会保障卡申领"):
        assert any(wanted in name for name in names), wanted
    for wanted in ("社会保障卡补领", "社会保障卡注销", "职业技能提升补贴", "失业保险金"):
        assert any(wanted in name for name in names), wanted


def test_sample_data_answers_every_claim_of_every_matter() -> None:
    """For a sample applicant of each matter: every claim's source has the claim's field,
    and an applicant whose records are planted to agree satisfies every claim."""
    rng = random.Random(3)
    signed_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for matter in default_catalog().matters:
        agreeing = 0
        for serial in range(1, 80):
            document = sample_commitment(matter, serial, rng, signed_at)
            subject = Subject(document.applicant.id_type, document.applicant.id_number)
            kind = planted(subject.id_number)
            verdicts = set()
            for claim, spec in zip(document.claims, matter.claims, strict=True):
                record = records(subject, spec.source)
                if record is None:
                    assert kind == "missing", (matter.code, spec.source)
                    continue
                assert spec.source_field in record, (matter.code, spec.key)
                observed = record[spec.source_field]
                as_of = date(2026, 11, 27)
                verdicts.add(
                    compare(
                        spec.key, spec.type, claim.op, claim.value, observed, as_of=as_of
                    ).verdict
                )
            if kind == "agree":
                assert verdicts == {"agree"}, matter.code
                agreeing += 1
        assert agreeing, matter.code


# ---------------------------------------------------------------------- loading errors


def test_a_wrong_field_names_the_file_the_matter_and_the_field(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    hrss = read(directory, "BJ-HRSS")
    hrss["matters"][1]["claims"][1]["op"] = "=~"
    write(directory, "BJ-HRSS", hrss)
    message = refusal(directory)
    assert message.startswith("catalog BJ-HRSS.json: matter BJ-HRSS-0002: claims[1].op: ")
    assert message.count("catalog ") == 1  # one mistake, one error


def test_a_missing_field_and_an_unknown_one_are_named(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    samr = read(directory, "BJ-SAMR")
    del samr["matters"][0]["severity"]
    samr["matters"][1]["notice"]["signed_by"] = "nobody"
    write(directory, "BJ-SAMR", samr)
    with pytest.raises(CatalogError) as caught:
        load_catalogs(directory)
    assert caught.value.problems == (
        "catalog BJ-SAMR.json: matter BJ-SAMR-0001: severity: Field required",
        "catalog BJ-SAMR.json: matter BJ-SAMR-0002: notice.signed_by: Extra inputs are not "
        "permitted",
    )


def test_a_condition_naming_an_unknown_claim_names_the_file_and_the_matter(
    tmp_path: Path,
) -> None:
    directory = shipped_copy(tmp_path)
    edu = read(directory, "BJ-EDU")
    edu["matters"][0]["conditions"][0]["claims"] = ["owns_a_car"]
    write(directory, "BJ-EDU", edu)
    message = refusal(directory)
    assert message.startswith("catalog BJ-EDU.json: matter BJ-EDU-0001: condition ")
    assert "owns_a_car" in message


def test_a_file_that_is_not_json_or_not_a_catalog_is_named(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    (directory / "BJ-EDU.json").write_text('{"department": "BJ-EDU",', encoding="utf-8")
    assert refusal(directory).startswith("catalog BJ-EDU.json: not a JSON file")
    write(directory, "BJ-EDU", {"department": "BJ-EDU", "matters": []})
    message = refusal(directory)
    assert "catalog BJ-EDU.json: catalog_version: Field required" in message
    assert "catalog BJ-EDU.json: matters: List should have at least 1 item" in message


def test_a_matter_of_another_department_is_refused(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    health = read(directory, "BJ-HEALTH")
    health["matters"][0]["department"] = "BJ-HRSS"
    write(directory, "BJ-HEALTH", health)
    message = refusal(directory)
    assert message.startswith("catalog BJ-HEALTH.json: matter BJ-HEALTH-0001: department: ")
    assert "'BJ-HRSS' differs from the file's 'BJ-HEALTH'" in message


def test_a_file_named_otherwise_than_its_department_is_refused(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    (directory / "BJ-EDU.json").rename(directory / "education.json")
    message = refusal(directory)
    assert message.startswith("catalog education.json: department: 'BJ-EDU' is not the file")
    assert "BJ-EDU.json" in message


def test_a_matter_code_given_twice_is_refused(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    tax = tax_catalog()
    tax["matters"][0]["code"] = "BJ-HRSS-0001"  # another department's code
    write(directory, TAX, tax)
    message = refusal(directory)
    assert message == (
        "catalog BJ-TAX.json: matter BJ-HRSS-0001: code: already given in BJ-HRSS.json; a "
        "matter code is given once"
    )
    within = shipped_copy(tmp_path / "again")
    hrss = read(within, "BJ-HRSS")
    hrss["matters"].append(hrss["matters"][0])
    write(within, "BJ-HRSS", hrss)
    assert "matter BJ-HRSS-0001: code: already given in BJ-HRSS.json" in refusal(within)


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    assert "no such directory" in refusal(tmp_path / "nowhere")
    assert "no <DEPARTMENT>.json file" in refusal(tmp_path)


def test_a_loading_error_is_an_invalid_document() -> None:
    assert issubclass(CatalogError, InvalidDocumentError)


# ---------------------------------------------------------------------- the configured directory


def test_default_catalog_reads_the_configured_directory_once(tmp_path: Path) -> None:
    shipped = default_catalog()
    directory = shipped_copy(tmp_path)
    write(directory, TAX, tax_catalog())
    configure_catalog_dir(directory)
    configured = default_catalog()
    assert configured is default_catalog()  # cached per directory
    assert configured.matter(TAX_MATTER).department == TAX
    assert TAX in configured.departments()
    configure_catalog_dir(lambda: None)  # a deferred setting naming none: the shipped one
    assert default_catalog() is shipped


def test_the_configured_catalog_must_map_every_condition(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    tax = tax_catalog()
    tax["matters"][0]["notice"]["conditions"] = "有固定的经营场所；依法纳税。"
    write(directory, TAX, tax)
    configure_catalog_dir(directory)
    with pytest.raises(InvalidDocumentError, match="BJ-TAX-0001: 依法纳税"):
        default_catalog()


def test_a_new_departments_file_is_taken_in_by_the_service(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    """No code change: a file in the configured directory, and intake takes commitments to
    its matter from that department's registrar."""
    directory = shipped_copy(tmp_path)
    write(directory, TAX, tax_catalog())
    world = open_service(tmp_path, embedded_deployment, catalog_dir=directory)
    try:
        matter = default_catalog().matter(TAX_MATTER)
        rng = random.Random(5)
        document = sample_commitment(matter, 1, rng, datetime(2026, 11, 2, 9, tzinfo=UTC))
        signed = sign_commitment(document, world.applicant_key)
        token = world.context.tokens.issue(TAX, "registrar").token
        response = post_signed(world, signed, Authorization=f"Bearer {token}")
        assert response.status_code == 202, response.text
        assert response.json()["hash"] == hex32(signed.hash())
        stored = world.store.get(signed.hash())
        assert stored is not None and stored.department == TAX
    finally:
        world.context.close()


def test_without_the_file_the_service_refuses_that_matter(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment)
    try:
        with_tax = shipped_copy(tmp_path)
        write(with_tax, TAX, tax_catalog())
        matter = load_catalogs(with_tax).matter(TAX_MATTER)
        rng = random.Random(5)
        document = sample_commitment(matter, 2, rng, datetime(2026, 11, 2, 9, tzinfo=UTC))
        signed = sign_commitment(document, world.applicant_key)
        token = world.context.tokens.issue(TAX, "registrar").token
        response = post_signed(world, signed, Authorization=f"Bearer {token}")
        assert response.status_code == 422, response.text
        assert world.store.get(signed.hash()) is None
    finally:
        world.context.close()


# ---------------------------------------------------------------------- catalog check


def check(*args: object, env: dict[str, str | None] | None = None) -> Result:
    return cli("catalog", "check", *args, env={"COMMITLEDGER_CATALOG_DIR": None, **(env or {})})


def test_catalog_check_maps_every_condition_of_the_shipped_catalog() -> None:
    result = check()
    assert result.exit_code == 0, explain(result)
    catalog = default_catalog()
    conditions = sum(len(m.conditions) for m in catalog.matters)
    assert result.stdout.rstrip().endswith(
        f"{len(catalog.matters)} matters, {len(catalog.departments())} departments, "
        f"{conditions} conditions, 0 unmapped"
    )
    assert "BJ-HRSS.json: BJ-HRSS v" in result.stdout
    assert "  无刑事犯罪记录 -> claim no_criminal_record" in result.stdout
    assert "BJ-HEALTH-0002 公共场所卫生许可 (tasks for 20%, drawn by seed)" in result.stdout
    assert (
        "  持有本市居住证或具有本市户籍 -> any of: claim holds_residence_permit | claim "
        "beijing_hukou"
    ) in result.stdout
    assert "有保证食品安全的规章制度 -> task food_safety_rules_review (document_review)" in (
        result.stdout
    )


def test_catalog_check_as_json() -> None:
    result = check("--json")
    assert result.exit_code == 0, explain(result)
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["unmapped"] == []
    assert len(report["matters"]) == len(default_catalog().matters)
    every = [c for m in report["matters"] for c in m["conditions"]]
    assert all(c["claims"] or c.get("task") for c in every)
    assert {d["file"] for d in report["departments"]} >= {"BJ-HRSS.json", "BJ-HEALTH.json"}


def test_catalog_check_lists_unmapped_conditions_and_exits_1(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    tax = tax_catalog()
    tax["matters"][0]["notice"]["conditions"] = "有固定的经营场所；依法纳税。"
    write(directory, TAX, tax)
    result = check("--dir", directory)
    assert result.exit_code == 1, explain(result)
    assert "1 unmapped" in result.stdout
    assert "unmapped: BJ-TAX-0001: 依法纳税" in result.stdout
    as_json = check("--dir", directory, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["unmapped"] == [
        {"matter": TAX_MATTER, "condition": "依法纳税"}
    ]


def test_catalog_check_of_a_broken_catalog_is_one_error_exit_2(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    hrss = read(directory, "BJ-HRSS")
    hrss["matters"][6]["claims"][1]["op"] = "=~"
    write(directory, "BJ-HRSS", hrss)
    result = check("--dir", directory)
    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: catalog BJ-HRSS.json: matter BJ-HRSS-0007: claims[1].op: ")
    as_json = check("--dir", directory, "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"]["type"] == "CatalogError"


def test_catalog_check_reads_the_setting(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    write(directory, TAX, tax_catalog())
    result = check("--json", env={"COMMITLEDGER_CATALOG_DIR": str(directory)})
    assert result.exit_code == 0, explain(result)
    report = json.loads(result.stdout)
    assert report["directory"] == str(directory)
    assert TAX_MATTER in {m["code"] for m in report["matters"]}


def test_the_command_line_reads_the_catalog_the_settings_name(tmp_path: Path) -> None:
    """In a process of its own, as it is run: `new` finds the matter of a department whose
    file is only in the directory COMMITLEDGER_CATALOG_DIR names."""
    directory = shipped_copy(tmp_path)
    write(directory, TAX, tax_catalog())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
        "COMMITLEDGER_CATALOG_DIR": str(directory),
        "COMMITLEDGER_DATA_DIR": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "api.cli.main", "new", "--matter", TAX_MATTER]
    command += ["--kind", "organisation", "--name", "北京示例商贸有限公司"]
    command += ["--id-type", "uscc", "--id-number", "911101051234567883", "--json"]
    made = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert made.returncode == 0, made.stderr
    document = json.loads((tmp_path / "commitment.json").read_text(encoding="utf-8"))
    assert (document["matter_code"], document["department"]) == (TAX_MATTER, TAX)
    del env["COMMITLEDGER_CATALOG_DIR"]  # the shipped catalog has no such matter
    (tmp_path / "commitment.json").unlink()
    refused = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert refused.returncode == 2
    assert f"unknown matter '{TAX_MATTER}'" in refused.stdout


def test_files_of_different_regions_are_refused(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    tax = tax_catalog()
    tax["region"] = "310000"  # Shanghai's matters do not merge into Beijing's catalog
    write(directory, TAX, tax)
    message = refusal(directory)
    assert message.startswith("catalog directory: region: the files name different regions")
    assert "BJ-TAX.json 310000" in message and "BJ-HRSS.json 110000" in message
