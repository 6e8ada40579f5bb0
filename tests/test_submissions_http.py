"""Submissions over HTTP: the API for operators' systems and the web pages for people."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.conftest import PASSWORD, Site, csrf_of

CELLS = (
    "cell_id,site_id,longitude,latitude,city_code,technology\n"
    "C0001,S01,112.55,37.87,140100,4G\n"
    "=cmd|' /C calc'!A0,S01,112.55,37.87,140100,4G\n"
    "C0003,S02,113.30,99.0,140200,5G\n"
)


def upload(site: Site, role: str, operator: str, body: str = CELLS, name: str = "cells.csv"):
    return site.client.post(
        "/api/v1/submissions",
        headers=site.as_role(role),
        data={"dataset": "cells", "operator": operator, "period": "2021-11"},
        files={"file": (name, body.encode(), "text/csv")},
    )


def test_operator_uploads_its_own_data_and_reads_the_report(site: Site) -> None:
    response = upload(site, "operator", "CMCC")
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "partial"
    assert (record["rows_accepted"], record["rows_quarantined"]) == (1, 2)
    report = site.client.get(
        f"/api/v1/submissions/{record['id']}/errors.csv", headers=site.as_role("operator")
    )
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    assert rows[0] == ["row", "column", "reason", "value"]
    values = [r[3] for r in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in values, "formula cells are neutralised"
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)
    quarantine = site.client.get(
        f"/api/v1/submissions/{record['id']}/quarantine", headers=site.as_role("operator")
    ).json()
    assert quarantine["total"] == 2
    assert {r["source_row"] for r in quarantine["rows"]} == {3, 4}
    # Each download of row-level data is audited, with what was taken and whose.
    log = site.client.get(
        "/api/v1/audit", params={"action": "data.downloaded"}, headers=site.as_role("admin")
    ).json()
    taken = {tuple(e["objects"]) for e in log["entries"]}
    assert ("download:errors.csv", f"submission:{record['id']}") in taken
    assert ("download:quarantine", f"submission:{record['id']}") in taken


def test_the_administrations_datasets_are_refused_under_an_operators_code(site: Site) -> None:
    response = site.client.post(
        "/api/v1/submissions",
        headers=site.as_role("admin"),
        data={"dataset": "targets", "operator": "CMCC", "period": "2021-11"},
        files={"file": ("targets.csv", b"region_code,year,indicator,value\n", "text/csv")},
    )
    assert response.status_code == 422, response.text
    assert "send it under the operator code CA" in response.json()["detail"]


def test_workbooks_and_parquet_files_upload_as_well_as_csv(site: Site) -> None:
    # An upload is kept under a neutral name while it is read: the readers go by content.
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    workbook = openpyxl.Workbook()
    for line in CELLS.splitlines():
        if not line.startswith("="):  # (openpyxl would write it as a formula)
            workbook.active.append(line.split(","))
    xlsx = io.BytesIO()
    workbook.save(xlsx)
    parquet = io.BytesIO()
    rows = [line.split(",") for line in CELLS.splitlines()]
    pq.write_table(pa.table({h: [r[i] for r in rows[1:]] for i, h in enumerate(rows[0])}), parquet)
    for name, body in (("cells.xlsx", xlsx.getvalue()), ("cells.parquet", parquet.getvalue())):
        response = site.client.post(
            "/api/v1/submissions",
            headers=site.as_role("operator"),
            data={"dataset": "cells", "operator": "CMCC", "period": "2021-11"},
            files={"file": (name, body, "application/octet-stream")},
        )
        assert response.status_code == 201, response.text
        record = response.json()
        assert (record["filename"], record["rows_accepted"]) == (name, 1), record["message"]


def test_a_number_in_the_files_name_is_masked_where_the_name_is_kept_and_shown(site: Site) -> None:
    record = upload(site, "operator", "CMCC", name="投诉_13812345678_张三.csv").json()
    assert record["filename"] == "投诉_138****5678_张三.csv"
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    for page in ("/data/submissions", f"/data/submissions/{record['id']}"):
        shown = browser.get(page).text
        assert "投诉_138****5678_张三.csv" in shown, page
        assert "13812345678" not in shown, page
    listed = site.client.get("/api/v1/submissions", headers=site.as_role("operator")).text
    assert "13812345678" not in listed


def test_accepted_rows_of_a_replaced_submission_stay_retrievable(site: Site) -> None:
    first = upload(site, "operator", "CMCC").json()
    corrected = CELLS.replace("113.30,99.0", "113.30,37.9").replace("=cmd|' /C calc'!A0", "C0002")
    second = upload(site, "operator", "CMCC", body=corrected).json()
    assert (second["status"], second["rows_accepted"]) == ("accepted", 3)
    again = site.client.get(f"/api/v1/submissions/{first['id']}", headers=site.as_role("operator"))
    assert again.json()["superseded_by"] == second["id"]

    def rows_of(record: dict[str, object], role: str = "operator") -> list[list[str]]:
        got = site.client.get(
            f"/api/v1/submissions/{record['id']}/rows", headers=site.as_role(role)
        )
        assert got.status_code == 200, got.text
        assert "attachment" in got.headers["content-disposition"]
        return list(csv.reader(io.StringIO(got.text.lstrip("\ufeff"))))

    old, new = rows_of(first), rows_of(second)
    assert old[0][:3] == ["source_row", "cell_id", "site_id"]
    assert [r[1] for r in old[1:]] == ["C0001"], "the replaced submission's own rows"
    assert [r[1] for r in new[1:]] == ["C0001", "C0002", "C0003"]
    parquet = site.client.get(
        f"/api/v1/submissions/{first['id']}/rows?format=parquet", headers=site.as_role("analyst")
    )
    assert parquet.content.startswith(b"PAR1")
    # Rejected: nothing was accepted. Another operator's: as if it did not exist.
    rejected = upload(site, "operator", "CMCC", body=CELLS.splitlines()[0] + "\nX,,,,,\n").json()
    assert rejected["status"] == "rejected"
    missing = site.client.get(
        f"/api/v1/submissions/{rejected['id']}/rows", headers=site.as_role("operator")
    )
    assert missing.status_code == 404
    assert "has no accepted rows" in missing.json()["detail"]
    theirs = upload(site, "analyst", "CUCC").json()
    hidden = site.client.get(
        f"/api/v1/submissions/{theirs['id']}/rows", headers=site.as_role("operator")
    )
    assert hidden.status_code == 404


def test_operators_cannot_submit_or_see_another_operators_data(site: Site) -> None:
    refused = upload(site, "operator", "CUCC")
    assert refused.status_code == 403
    theirs = upload(site, "analyst", "CUCC").json()
    assert (
        site.client.get(
            f"/api/v1/submissions/{theirs['id']}", headers=site.as_role("operator")
        ).status_code
        == 404
    )
    assert (
        site.client.get(
            f"/api/v1/submissions/{theirs['id']}/errors.csv", headers=site.as_role("operator")
        ).status_code
        == 404
    )
    listed = site.client.get("/api/v1/submissions", headers=site.as_role("operator")).json()
    assert all(s["operator"] == "CMCC" for s in listed["submissions"])
    assert (
        site.client.get(
            f"/api/v1/submissions/{theirs['id']}", headers=site.as_role("analyst")
        ).status_code
        == 200
    )


@pytest.mark.parametrize("role", ["viewer", "liaison"])
def test_roles_without_data_rights_are_refused(site: Site, role: str) -> None:
    assert upload(site, role, "CMCC").status_code == 403
    assert site.client.get("/api/v1/submissions", headers=site.as_role(role)).status_code == 403


def test_bad_requests(site: Site) -> None:
    admin = site.as_role("admin")
    unknown = site.client.post(
        "/api/v1/submissions",
        headers=admin,
        data={"dataset": "nope", "operator": "CMCC"},
        files={"file": ("x.csv", b"a\n1\n", "text/csv")},
    )
    assert unknown.status_code == 404
    assert "no dataset named 'nope'" in unknown.json()["detail"]
    bad_period = site.client.post(
        "/api/v1/submissions",
        headers=admin,
        data={"dataset": "cells", "operator": "CMCC", "period": "21-11"},
        files={"file": ("x.csv", b"a\n1\n", "text/csv")},
    )
    assert bad_period.status_code == 422
    no_file = site.client.post(
        "/api/v1/submissions", headers=admin, data={"dataset": "cells", "operator": "CMCC"}
    )
    assert no_file.status_code == 422
    duplicate = upload(site, "admin", "CMCC")
    again = upload(site, "admin", "CMCC")
    assert again.json()["duplicate_of"] == duplicate.json()["id"]


def test_datasets_are_listed(site: Site) -> None:
    datasets = site.client.get("/api/v1/datasets", headers=site.as_role("viewer")).json()
    cdr = next(d for d in datasets if d["name"] == "voice_cdr")
    caller = next(c for c in cdr["columns"] if c["name"] == "caller")
    assert caller["personal_identifier"] == "phone"
    assert "主叫号码" in caller["aliases"]


def test_web_upload_list_and_detail(site: Site) -> None:
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    form = browser.get("/data/upload")
    assert form.status_code == 200
    assert "上传文件" in form.text
    operators = form.text.split('name="operator"')[1].split("</select>")[0]
    assert "CUCC" not in operators
    assert '<option value="CMCC">中国移动 (CMCC)</option>' in operators, "named, sent as the code"
    offered = form.text.split('name="dataset"')[1].split("</select>")[0]
    assert "voice_cdr" in offered
    assert "police_feedback" not in offered, "the administration's datasets are not offered"
    assert "corridors" not in offered
    posted = browser.post(
        "/data/upload",
        data={
            "dataset": "cells",
            "operator": "CMCC",
            "period": "2021-11",
            "csrf_token": csrf_of(form.text),
        },
        files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
    )
    assert posted.status_code == 200
    assert "部分接收" in posted.text
    assert "隔离行" in posted.text
    listing = browser.get("/data/submissions")
    assert "cells.csv" in listing.text
    assert '<td title="cells">小区工参</td>' in listing.text, "datasets by their titles"
    assert "<td>中国移动</td>" in listing.text, "operators by their names"
    assert "<td>CMCC</td>" not in listing.text
    assert "cells.csv" in browser.get("/data/submissions", params={"period": "2021-11"}).text
    assert "cells.csv" not in browser.get("/data/submissions", params={"period": "2020-01"}).text
    assert browser.get("/data/submissions", params={"period": "2021-13"}).status_code == 422
    no_csrf = browser.post(
        "/data/upload",
        data={"dataset": "cells", "operator": "CMCC"},
        files={"file": ("c.csv", CELLS.encode(), "text/csv")},
    )
    assert no_csrf.status_code == 403
    datasets = browser.get("/data/datasets")
    assert datasets.status_code == 200
    # The rules in the reader's language, nested references too.
    assert (
        "必填；6 位行政区划代码，例如 140100（[1-9][0-9]{5}）；不超过 256 个字符；须存在于"
        in datasets.text
    ), "the form in words, an example, then the regular expression"
    assert "地市和区县的人口普查" in datasets.text
    assert "个人标识（phone）：入库时假名化" in datasets.text
    assert "at most 256 characters" not in datasets.text


class BodyMeter:
    """Wraps an ASGI app and counts the request-body bytes it reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


BIG = b"cell_id\n" + b"C0001\n" * (2 << 20)  # 12 MiB, under the request size limit


def _big_upload(client: TestClient, path: str, **kw: object):
    return client.post(
        path,
        data={"dataset": "cells", "operator": "CMCC", "period": "2021-11"},
        files={"file": ("cells.csv", BIG, "text/csv")},
        **kw,
    )


def test_uploads_are_refused_before_their_body_is_read(site: Site) -> None:
    meter = BodyMeter(site.client.app)
    client = TestClient(meter)

    def refused(path: str, status: int, **kw: object) -> None:
        meter.read = 0
        assert _big_upload(client, path, **kw).status_code == status
        assert meter.read == 0, f"{path}: {meter.read} bytes read before the refusal"

    refused("/api/v1/submissions", 401)
    refused("/api/v1/submissions", 403, headers=site.as_role("viewer"))
    refused("/data/upload", 401)
    site.login(client, "vic", PASSWORD)
    refused("/data/upload", 403)


def test_the_api_description_still_shows_the_upload_form(site: Site) -> None:
    spec = site.client.get("/api/v1/openapi.json").json()
    body = spec["paths"]["/api/v1/submissions"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert {"file", "dataset", "operator", "period", "crs"} <= set(schema["properties"])
    assert {"file", "dataset", "operator"} <= set(schema["required"])


def test_reasons_are_shown_in_the_readers_language(site: Site) -> None:
    """The record keeps English (the API's words); pages and their report translate it."""
    body = CELLS + "C0004,S02,112.6,37.9,140100,6G\nC0001,S03,112.6,37.9,140100,4G\n"
    record = upload(site, "operator", "CMCC", body=body).json()
    assert "rows quarantined" in record["message"]
    assert any("not one of: 2G, 4G, 5G" in k for k in record["errors_by_reason"])
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)

    page = browser.get(f"/data/submissions/{record['id']}").text
    assert f"{record['rows_total']} 行中有 {record['rows_quarantined']} 行被隔离" in page
    assert "latitude: 大于最大值 54" in page, "errors by reason, with the column's name"
    assert "technology: 不在允许的取值中：2G, 4G, 5G" in page
    assert "cell_id 重复：首次出现在第 2 行" in page, "a reason the engine completes"
    assert (
        "<td>cell_id: 格式不符合要求：应为4 至 32 位字母、数字、_ 或 -，例如 CM5000123-1</td>"
        in page
    ), "quarantined: why, the form in words and an example"
    headers = [page.index(f'<th title="{c}">') for c in ("source_row", "reasons", "cell_id")]
    assert headers == sorted(headers), "why a row was held back comes before its values"
    assert '<th title="cell_id">小区标识</th>' in page, "columns by their Chinese names"
    assert "rows quarantined" not in page
    assert "not one of" not in page
    report = browser.get(f"/data/submissions/{record['id']}/errors.csv")
    rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    assert rows[0] == ["行号", "列", "原因", "值"]
    # Columns by the names the sender's header uses, with the contract's beside them.
    assert ["6", "小区标识 (cell_id)", "cell_id 重复：首次出现在第 2 行", "C0001"] in rows
    api = site.client.get(
        f"/api/v1/submissions/{record['id']}/errors.csv", headers=site.as_role("operator")
    ).text
    assert "duplicate cell_id: first seen in row 2" in api, "the API's report stays English"

    browser.get("/lang/en?next=/")
    english = browser.get(f"/data/submissions/{record['id']}").text
    assert "technology: not one of: 2G, 4G, 5G" in english
    rows = list(
        csv.reader(
            io.StringIO(
                browser.get(f"/data/submissions/{record['id']}/errors.csv").text.lstrip("\ufeff")
            )
        )
    )
    assert rows[0] == ["row", "column", "reason", "value"]
    assert any(r[1] == "cell_id" for r in rows[1:]), rows


def test_a_bad_mobile_number_is_told_the_form_in_words_everywhere(site: Site) -> None:
    """The API's record, report and quarantine in English; the pages and their report in the
    reader's language; the datasets' reference with the regular expression as well."""
    body = (
        "sender,receiver,sent_at,direction\n"
        "13800001111,10086,2021-11-05 10:00:00,MO\n"
        "1380000111,10086,2021-11-05 10:01:00,MO\n"
    )
    record = site.client.post(
        "/api/v1/submissions",
        headers=site.as_role("operator"),
        data={"dataset": "sms", "operator": "CMCC", "period": "2021-11"},
        files={"file": ("sms.csv", body.encode(), "text/csv")},
    ).json()
    english = (
        "does not have the expected form: an 11-digit mobile number beginning 13 to 19 "
        "(86 or +86 before it allowed), such as 13800138000"
    )
    chinese = (
        "格式不符合要求：应为以 13 至 19 开头的 11 位手机号码（前面可带 86 或 +86），"
        "例如 13800138000"
    )
    assert record["errors_by_reason"] == {f"sender: {english}": 1}
    api = site.client.get(
        f"/api/v1/submissions/{record['id']}/errors.csv", headers=site.as_role("operator")
    ).text
    api_rows = list(csv.reader(io.StringIO(api.lstrip("\ufeff"))))
    assert [r[:3] for r in api_rows[1:]] == [["3", "sender", english]]
    quarantine = site.client.get(
        f"/api/v1/submissions/{record['id']}/quarantine", headers=site.as_role("operator")
    ).json()
    assert [r["reasons"] for r in quarantine["rows"]] == [f"sender: {english}"]
    (sender,) = (
        c
        for d in site.client.get("/api/v1/datasets", headers=site.as_role("viewer")).json()
        if d["name"] == "sms"
        for c in d["columns"]
        if c["name"] == "sender"
    )
    assert sender["form"] == {
        "description": "an 11-digit mobile number beginning 13 to 19 (86 or +86 before it allowed)",
        "example": "13800138000",
        "pattern": r"(\+?86)?1[3-9][0-9]{9}",
    }

    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    page = browser.get(f"/data/submissions/{record['id']}").text
    assert f"<td>sender: {chinese}</td>" in page, "the quarantine viewer"
    report = browser.get(f"/data/submissions/{record['id']}/errors.csv").text
    chinese_rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert [r[2] for r in chinese_rows[1:]] == [chinese]
    browser.get("/lang/en?next=/")
    report = browser.get(f"/data/submissions/{record['id']}/errors.csv").text
    english_rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert [r[2] for r in english_rows[1:]] == [english]
    for rows in (api_rows, chinese_rows, english_rows):
        cells = [cell for row in rows for cell in row]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), "formula-safe"
        assert not any("[3-9]" in c for c in cells), "no regular expression"
    datasets = browser.get("/data/datasets").text
    assert (
        "an 11-digit mobile number beginning 13 to 19 (86 or +86 before it allowed), "
        "such as 13800138000 ((\\+?86)?1[3-9][0-9]{9})" in datasets
    ), "the reference gives the words, an example and the regular expression"


def test_a_refused_file_says_why_in_the_readers_language(site: Site) -> None:
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    form = browser.get("/data/upload")
    posted = browser.post(
        "/data/upload",
        data={
            "dataset": "cells",
            "operator": "CMCC",
            "period": "2021-11",
            "csrf_token": csrf_of(form.text),
        },
        files={"file": ("cells.csv", b"cell_id,site_id\nC1,S1\n", "text/csv")},
    )
    assert posted.status_code == 200, "a rejected file is a recorded submission"
    assert "缺少必填列 longitude, latitude, city_code" in posted.text
    assert "missing required column" not in posted.text
    refused = browser.post(
        "/data/upload",
        data={
            "dataset": "cells",
            "operator": "CUCC",
            "period": "2021-11",
            "csrf_token": csrf_of(form.text),
        },
        files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
    )
    assert refused.status_code == 403
    assert "运营商用户只能报送本运营商的数据" in refused.text


def test_the_upload_form_comes_back_with_what_to_change(site: Site) -> None:
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    token = csrf_of(browser.get("/data/upload").text)

    def post(**fields: str):
        return browser.post(
            "/data/upload",
            data={"dataset": "cells", "operator": "CMCC", "csrf_token": token, **fields},
            files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
        )

    no_month = post(crs="gcj02")
    assert no_month.status_code == 422
    assert '<form method="post" action="/data/upload"' in no_month.text, "the form again"
    assert "cells 没有可据以确定月份的日期列" in no_month.text
    assert '<option value="cells" selected>' in no_month.text, "with what was chosen"
    assert '<option value="gcj02" selected>' in no_month.text
    bad_month = post(period="2021-13")
    assert bad_month.status_code == 422
    assert "&#39;2021-13&#39;" in bad_month.text, "the refusal names what is not a month"
    unknown = post(dataset="towers", period="2021-11")
    assert unknown.status_code == 422
    assert "没有名为 &#39;towers&#39; 的数据集" in unknown.text

    first = post(period="2021-11")
    assert first.status_code == 200
    assert "本文件此前已报送" not in first.text
    again = post(period="2021-11")
    assert again.status_code == 200
    assert "本文件此前已报送，未作任何更改。" in again.text


def test_an_upload_is_copied_to_the_private_scratch_space_and_swept_if_left(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from telereg.api import uploads

    scratch = site.settings.data_dir / "scratch"
    # What a server killed while it read an upload leaves: a copy in its scratch directory.
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    left = scratch / ("0" * 32)
    left.mkdir(parents=True, mode=0o700)
    (left / ".owner").write_text(f"{socket.gethostname()} {ended.pid}")
    (left / uploads.UPLOAD_COPY).write_text(CELLS)
    seen: list[tuple[Path, int, bool]] = []
    ingest = uploads.ingest_file

    def watched(settings, *, path: Path, **rest):  # type: ignore[no-untyped-def]
        seen.append((path, path.parent.stat().st_mode & 0o777, path.exists()))
        return ingest(settings, path=path, **rest)

    monkeypatch.setattr(uploads, "ingest_file", watched)
    response = upload(site, "operator", "CMCC")
    assert response.status_code == 201, response.text
    ((copy, mode, present),) = seen
    assert copy.parent.parent == scratch, "in the data dir's scratch space, not the system's"
    assert (mode, present) == (0o700, True)
    assert not copy.parent.exists(), "removed once the request is done"
    assert not left.exists(), "a copy a killed server left is swept"
    assert list(scratch.iterdir()) == []


def _nothing_kept(site: Site) -> None:
    from sqlalchemy import func, select

    from telereg.core.db import session_scope
    from telereg.ingest.models import Submission

    with session_scope(site.settings) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
    lake = site.settings.lake_dir
    assert not list(lake.rglob("*.parquet")) if lake.exists() else True
    scratch = site.settings.data_dir / "scratch"
    assert not (scratch.is_dir() and list(scratch.iterdir())), "no copy of the upload is left"


def test_a_storage_failure_answers_507_saying_what_is_wrong_without_paths(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # A real failure of the file system, as root too (chmod does not stop root): a file
    # stands where the ingest must make its staging directory.
    staging = site.settings.lake_dir / "_staging"
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_text("not a directory")
    answer = site.client.post(
        "/api/v1/submissions",
        headers={**site.as_role("operator"), "Accept-Language": "en"},
        data={"dataset": "cells", "operator": "CMCC", "period": "2021-11"},
        files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
    )
    assert answer.status_code == 507, answer.text
    body = answer.json()
    said = "the server's storage is full or not writable; nothing was stored; ask the administrator"
    assert (body["detail"], body["message"], body["type"]) == (
        said,
        said,
        "urn:telereg:problem:storage",
    )
    assert "internal error" not in answer.text
    assert str(site.settings.data_dir) not in answer.text, "no server path in the answer"
    assert "_staging" not in answer.text
    # The administrator finds the cause, with the path, in the server log.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "storage error on POST /api/v1/submissions" in logged
    assert str(staging) in caplog.text
    _nothing_kept(site)


def test_an_upload_that_cannot_be_copied_is_a_storage_failure_too(site: Site) -> None:
    # The upload's copy cannot be made: a file stands where the scratch space must be.
    scratch = site.settings.data_dir / "scratch"
    if scratch.is_dir():
        scratch.rmdir()
    scratch.write_text("not a directory")
    answer = upload(site, "operator", "CMCC")
    assert answer.status_code == 507, answer.text
    assert answer.json()["type"] == "urn:telereg:problem:storage"
    assert str(site.settings.data_dir) not in answer.text
    scratch.unlink()
    _nothing_kept(site)


def test_the_web_upload_page_says_the_storage_failed_without_paths(site: Site) -> None:
    browser = TestClient(site.client.app)
    site.login(browser, "olu", PASSWORD)
    browser.get("/lang/en")
    form = browser.get("/data/upload")
    staging = site.settings.lake_dir / "_staging"
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_text("not a directory")
    posted = browser.post(
        "/data/upload",
        data={
            "dataset": "cells",
            "operator": "CMCC",
            "period": "2021-11",
            "csrf_token": csrf_of(form.text),
        },
        files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
    )
    assert posted.status_code == 507
    assert posted.headers["content-type"].startswith("text/html")
    assert "the server&#39;s storage is full or not writable; nothing was stored" in posted.text
    assert "Please try again later" not in posted.text
    assert str(site.settings.data_dir) not in posted.text
    # The form again, as it was filled in, to send once there is room.
    assert 'name="file"' in posted.text
    assert '<option value="cells" selected' in posted.text
    # And in Chinese, the default language.
    browser.get("/lang/zh_CN")
    form = browser.get("/data/upload")
    posted = browser.post(
        "/data/upload",
        data={"dataset": "cells", "operator": "CMCC", "period": "2021-11"}
        | {"csrf_token": csrf_of(form.text)},
        files={"file": ("cells.csv", CELLS.encode(), "text/csv")},
    )
    assert posted.status_code == 507
    assert "服务器存储空间已满或无法写入；未保存任何内容" in posted.text
    _nothing_kept(site)


def test_pages_say_their_times_are_utc(site: Site) -> None:
    record = upload(site, "operator", "CMCC").json()
    browser = TestClient(site.client.app)
    site.login(browser, "ada", PASSWORD)
    when = record["submitted_at"][:16].replace("T", " ")
    for address in ("/", "/data/submissions", f"/data/submissions/{record['id']}"):
        assert f"{when} UTC" in browser.get(address).text, address
    users = browser.get("/admin/users").text
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", users), "the last sign-in"
