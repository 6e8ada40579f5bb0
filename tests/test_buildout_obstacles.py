"""Site-obstacle cases: opened from reports, moved only along the workflow, audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from telereg import registry
from telereg.app import create_app
from telereg.cases.service import move
from telereg.core import accounts
from telereg.core.db import session_scope
from telereg.core.errors import ConflictError, InputError, PermissionDeniedError
from telereg.core.models import AuditEntry
from telereg.core.permissions import Role
from telereg.core.settings import load_settings
from telereg.domains.buildout.obstacles import WORKFLOW, obstacle_board, open_cases_from_reports
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario
from tests.conftest import PASSWORD, ROOT, csrf_of, principal_of_role


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("obstacles") / "var")
    prepare(settings, principal=ROOT)
    run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=5,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    with session_scope(settings) as session:
        # Each operator's obstacles file opened its cases as it was ingested.
        assert len(obstacle_board(session, principal=ROOT)["cases"]) > 10
        assert open_cases_from_reports(session, settings=settings, principal=ROOT) == 0
        accounts.create_user(
            session, principal=ROOT, username="ann", role="analyst", password=PASSWORD
        )
    return settings


def test_a_case_goes_through_the_workflow(settings) -> None:
    with session_scope(settings) as session:
        case_id = obstacle_board(session, principal=ROOT)["cases"][0]["id"]
        with pytest.raises(InputError, match="who handles"):
            move(
                session,
                principal=ROOT,
                workflow=WORKFLOW,
                case_id=case_id,
                to="referred",
                note="power supply needed",
            )
        with pytest.raises(ConflictError, match="can move to"):
            move(
                session,
                principal=ROOT,
                workflow=WORKFLOW,
                case_id=case_id,
                to="resolved",
                note="skipping ahead",
            )
        with pytest.raises(InputError, match="note"):
            move(session, principal=ROOT, workflow=WORKFLOW, case_id=case_id, to="closed", note=" ")
        with pytest.raises(PermissionDeniedError):
            move(
                session,
                principal=principal_of_role(Role.VIEWER),
                workflow=WORKFLOW,
                case_id=case_id,
                to="closed",
                note="x",
            )
        move(
            session,
            principal=ROOT,
            workflow=WORKFLOW,
            case_id=case_id,
            to="referred",
            note="asked the power company",
            handler="供电公司",
        )
        move(
            session,
            principal=ROOT,
            workflow=WORKFLOW,
            case_id=case_id,
            to="resolved",
            note="power connected on 2021-12-03",
        )
        move(
            session,
            principal=ROOT,
            workflow=WORKFLOW,
            case_id=case_id,
            to="closed",
            note="site in service",
        )
    with session_scope(settings) as session:
        board = obstacle_board(session, principal=ROOT)
        case = next(c for c in board["cases"] if c["id"] == case_id)
        assert case["status"] == "closed"
        assert case["next"] == []
        assert ("供电公司", "closed", 1) in board["by_department"]
        steps = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.startswith("cases.site_obstacle."))
        ).all()
        assert {
            "cases.site_obstacle.referred",
            "cases.site_obstacle.resolved",
            "cases.site_obstacle.closed",
        } <= set(steps)


def test_the_page_moves_a_case_and_refuses_bad_steps(settings) -> None:
    client = TestClient(create_app(settings))
    page = client.get("/login")
    client.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    board = client.get("/buildout/obstacles")
    assert board.status_code == 200
    assert "5G建站难题" in board.text
    token = csrf_of(board.text)
    with session_scope(settings) as session:
        open_case = next(
            c for c in obstacle_board(session, principal=ROOT)["cases"] if c["status"] == "open"
        )
    bad = client.post(
        f"/buildout/obstacles/{open_case['id']}",
        data={"to": "resolved", "note": "x", "csrf_token": token},
    )
    assert bad.url.query == b"error=conflict"
    assert "该操作与当前状态不符" in bad.text
    # and why, in the server's words, once
    why = bad.text.split("该操作与当前状态不符", 1)[1].split("</p>", 1)[0]
    assert "不能转为已解决" in why, "in the page's language"
    again = client.get("/buildout/obstacles?error=conflict")
    assert "resolved" not in again.text.split("该操作与当前状态不符", 1)[1].split("</p>", 1)[0]
    # A step refused for a reason the server gives says that reason, not generic advice.
    no_handler = client.post(
        f"/buildout/obstacles/{open_case['id']}",
        data={"to": "referred", "note": "规划调整", "csrf_token": token},
    )
    assert no_handler.url.query == b"error=invalid-input"
    assert "操作未执行：" in no_handler.text
    assert "请检查备注" not in no_handler.text
    good = client.post(
        f"/buildout/obstacles/{open_case['id']}",
        data={"to": "referred", "note": "规划调整", "handler": "自然资源局", "csrf_token": token},
    )
    assert good.status_code == 200
    assert (
        client.post(
            f"/buildout/obstacles/{open_case['id']}", data={"to": "resolved", "note": "done"}
        ).status_code
        == 403
    )
    with session_scope(settings) as session:
        case = next(
            c
            for c in obstacle_board(session, principal=ROOT)["cases"]
            if c["id"] == open_case["id"]
        )
    assert (case["status"], case["handler"]) == ("referred", "自然资源局")


def test_build_out_pages_in_english(settings) -> None:
    client = TestClient(create_app(settings))
    page = client.get("/login")
    client.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    client.get("/lang/en?next=/")
    dashboard = client.get("/buildout").text
    assert "Corridors and gaps in 5G coverage" in dashboard
    # The target chart's legend, in the page's language like the rest of it
    assert '{name: "Done", type: "bar"' in dashboard
    assert '{name: "Projected at year end", type: "bar"' in dashboard
    assert "交通干线及5G覆盖缺口" not in dashboard
    board = client.get("/buildout/obstacles").text
    assert "Site-construction obstacles" in board
    assert "5G建站难题" not in board
    html = client.get("/api/v1/buildout/report?region=140000&period=2021-11&format=html&lang=en")
    assert "Key figures" in html.text
    assert "主要指标" not in html.text


def test_cases_opened_in_a_batch_once_per_reference_and_counted(session) -> None:
    from telereg.cases.service import NewCase, counts, open_cases

    new = [
        NewCase("OB-1", "first", {"kind": "power"}),
        NewCase("OB-1", "the same obstacle again", {"kind": "land"}),
        NewCase("OB-2", "second", {"kind": "power"}),
    ]
    opened = open_cases(session, principal=ROOT, workflow=WORKFLOW, new=new)
    assert [(c.reference, c.title) for c in opened] == [("OB-1", "first"), ("OB-2", "second")]
    assert open_cases(session, principal=ROOT, workflow=WORKFLOW, new=new) == []
    by_kind = counts(session, principal=ROOT, workflow=WORKFLOW, by="kind")
    assert by_kind == [("power", "open", 2)]


def test_an_operators_obstacles_file_opens_its_cases_once(settings, tmp_path) -> None:
    from telereg.ingest.service import ingest_file

    operator = principal_of_role(Role.OPERATOR, operator_code="CTCC")
    header = "obstacle_id,site_id,county_code,kind,description,reported_date\n"
    first = tmp_path / "obstacles.csv"
    first.write_text(header + "CTCC-X1,S1,140105,power,no power yet,2021-12-01\n")
    revised = tmp_path / "obstacles-revised.csv"
    revised.write_text(
        first.read_text() + "CTCC-X2,S2,140105,land,owner refuses entry,2021-12-03\n"
    )

    def send(path, sender=operator) -> set[str]:
        record = ingest_file(
            settings,
            principal=sender,
            contract=registry.contract("site_obstacles"),
            path=path,
            filename=path.name,
            operator=sender.operator_code or "",
            period="2021-12",
        )
        assert record.status == "accepted", record.message
        with session_scope(settings) as session:
            board = obstacle_board(session, principal=ROOT)["cases"]
        return {c["reference"] for c in board if c["reference"].startswith("CTCC-X")}

    assert send(first) == {"CTCC-X1"}
    assert send(first) == {"CTCC-X1"}, "the same file again opens nothing twice"
    assert send(revised) == {"CTCC-X1", "CTCC-X2"}, "a superseding file opens what is new"
    with session_scope(settings) as session:
        references = [c["reference"] for c in obstacle_board(session, principal=ROOT)["cases"]]
    assert references.count("CTCC-X1") == 1
    # Another operator numbering its obstacles alike gets its own case.
    other = tmp_path / "other.csv"
    other.write_text(header + "CTCC-X1,S9,140105,power,feeder not built,2021-12-02\n")
    send(other, principal_of_role(Role.OPERATOR, operator_code="CUCC"))
    with session_scope(settings) as session:
        board = obstacle_board(session, principal=ROOT)["cases"]
    same = sorted(c["operator"] for c in board if c["reference"] == "CTCC-X1")
    assert same == ["CTCC", "CUCC"]
