"""The four-eyes rule for re-identification (``TELEREG_REIDENTIFY_NEEDS_APPROVAL``): through
the real app, its API and its pages, on the state DB the site is made with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from telereg.core.db import session_scope
from telereg.core.models import ReidentifyApproval
from telereg.core.settings import Settings, load_settings
from tests.conftest import PASSWORD, Site, csrf_of, make_site
from tests.test_api import _audit, _case_of_lines, _in_vault, _reveal

REASON = "police request JQ-7"


@pytest.fixture
def four_eyes(tmp_path: Path) -> Site:
    return make_site(load_settings(data_dir=tmp_path / "var", reidentify_needs_approval=True))


def _line_of(site: Site, case: int) -> str:
    found = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("analyst"))
    return str(found.json()["subject"]["line"])


def _ask(site: Site, role: str, case: int, reason: str = REASON) -> Any:
    return site.client.post(
        "/api/v1/privacy/approvals",
        json={"case_id": case, "reason": reason},
        headers=site.as_role(role),
    )


def _decide(site: Site, role: str, request: int, decision: str, note: str = "checked") -> Any:
    return site.client.post(
        f"/api/v1/privacy/approvals/{request}/decision",
        json={"decision": decision, "note": note},
        headers=site.as_role(role),
    )


def test_a_reveal_needs_another_users_approval_for_its_case(four_eyes: Site) -> None:
    site = four_eyes
    case = _case_of_lines(site, "eyes", "13900000001", "140102198001010011")
    line = _line_of(site, case)

    # The rule implies a case; and with a case, no approval yet: refused, said why, audited.
    assert _reveal(site, "analyst", line, REASON).status_code == 422
    none = _reveal(site, "analyst", line, REASON, case)
    assert none.status_code == 403, none.text
    assert none.json()["type"].endswith("approval-required")
    assert f"case {case} needs another user's approval" in none.json()["detail"]
    assert "13900000001" not in none.text

    # A request says why, as a reveal's reason must; one at a time.
    assert _ask(site, "analyst", case, "test").status_code == 422
    asked = _ask(site, "analyst", case)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["status"], request["requested_by"], request["in_force"]) == (
        "pending",
        "ann",
        False,
    )
    again = _ask(site, "analyst", case)
    assert again.status_code == 409
    assert f"request {request['id']} awaits" in again.json()["detail"]
    waiting = _reveal(site, "analyst", line, REASON, case)
    assert waiting.status_code == 403
    assert "awaits an approver's decision" in waiting.json()["detail"]

    # The requester sees their own requests; an approver, every pending one.
    mine = site.client.get("/api/v1/privacy/approvals", headers=site.as_role("analyst"))
    assert [r["id"] for r in mine.json()] == [request["id"]]
    queue = site.client.get("/api/v1/privacy/approvals", headers=site.as_role("admin"))
    assert [r["id"] for r in queue.json()] == [request["id"]]
    assert (
        site.client.get("/api/v1/privacy/approvals", headers=site.as_role("viewer")).status_code
        == 403
    )

    # Only an approver decides (never with a blank note), and only once.
    assert _decide(site, "analyst", request["id"], "approved").status_code == 403
    assert _decide(site, "admin", request["id"], "approved", note=" ").status_code == 422
    granted = _decide(site, "admin", request["id"], "approved", note="JQ-7 on file")
    assert granted.status_code == 200, granted.text
    approval = granted.json()
    assert (approval["status"], approval["decided_by"], approval["in_force"]) == (
        "approved",
        "ada",
        True,
    )
    lasts = datetime.fromisoformat(approval["expires_at"]) - datetime.fromisoformat(
        approval["decided_at"]
    )
    assert lasts == timedelta(hours=24)
    twice = _decide(site, "admin", request["id"], "refused")
    assert twice.status_code == 409
    assert "decided already (approved, by ada)" in twice.json()["detail"]
    assert _decide(site, "admin", 999999, "approved").status_code == 404

    shown = _reveal(site, "analyst", line, REASON, case)
    assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == "13900000001"
    # The approval is the requester's alone: the approver has none of their own.
    assert _reveal(site, "admin", line, REASON, case).status_code == 403

    objects = [f"case:{case}", f"approval:{request['id']}"]
    assert [(e["actor"], e["objects"]) for e in _audit(site, "privacy.approval_requested")] == [
        ("ann", objects)
    ]
    (entry,) = _audit(site, "privacy.approval_granted")
    assert (entry["actor"], entry["objects"], entry["reason"]) == ("ada", objects, "JQ-7 on file")
    assert entry["detail"]["requested_by"] == "ann"
    refused = _audit(site, "privacy.approval_decision_refused")[::-1]
    assert [(e["actor"], e["detail"]["refused"]) for e in refused] == [
        ("ann", "forbidden"),
        ("ada", "invalid-input"),
        ("ada", "conflict"),
        ("ada", "not-found"),
    ]
    reveals_refused = _audit(site, "privacy.reidentify_refused")[::-1]
    assert [e["detail"]["refused"] for e in reveals_refused] == [
        "invalid-input",
        "approval-required",
        "approval-required",
        "approval-required",
    ]

    # The case's history shows who asked, who approved, and the look.
    history = site.client.get(f"/api/v1/fraud/cases/{case}", headers=site.as_role("analyst"))
    steps = [
        (h["actor"], h["step"], h["note"])
        for h in history.json()["history"]
        if h["step"].startswith("approval") or h["step"] == "reidentified"
    ]
    assert steps == [
        ("ann", "approval_requested", REASON),
        ("ada", "approval_granted", "JQ-7 on file"),
        ("ann", "reidentified", REASON),
    ]


def test_an_approval_ends_when_it_expires_is_refused_or_withdrawn(four_eyes: Site) -> None:
    site = four_eyes
    case = _case_of_lines(site, "ends", "13900000001", "140102198001010011")
    line = _line_of(site, case)

    first = _ask(site, "analyst", case).json()["id"]
    assert _decide(site, "admin", first, "approved").status_code == 200
    assert _reveal(site, "analyst", line, REASON, case).status_code == 200
    # (an hour is the shortest approval: its end is moved, not waited for)
    with session_scope(site.settings) as s:
        s.execute(
            update(ReidentifyApproval)
            .where(ReidentifyApproval.id == first)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    expired = _reveal(site, "analyst", line, REASON, case)
    assert expired.status_code == 403
    assert (
        f"your approval to re-identify the values of case {case} expired at"
        in (expired.json()["detail"])
    )

    second = _ask(site, "analyst", case)
    assert second.status_code == 201, "an expired approval may be asked for again"
    assert (
        _decide(site, "admin", second.json()["id"], "refused", "no court order").status_code == 200
    )
    no = _reveal(site, "analyst", line, REASON, case)
    assert no.status_code == 403
    assert "was refused by ada" in no.json()["detail"]

    third = _ask(site, "analyst", case).json()["id"]
    assert _decide(site, "admin", third, "approved").status_code == 200
    withdrawn = site.client.post(
        f"/api/v1/privacy/approvals/{third}/withdrawal",
        json={"note": "case closed by the police"},
        headers=site.as_role("admin"),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["in_force"]) == ("withdrawn", False)
    gone = _reveal(site, "analyst", line, REASON, case)
    assert gone.status_code == 403
    assert "was withdrawn by ada" in gone.json()["detail"]
    again = site.client.post(
        f"/api/v1/privacy/approvals/{third}/withdrawal",
        json={"note": "twice"},
        headers=site.as_role("admin"),
    )
    assert again.status_code == 409
    assert [e["action"] for e in _audit(site, "privacy.approval_withdrawn")] == [
        "privacy.approval_withdrawn"
    ]
    # Refused steps are kept too: the withdrawal twice, and a request that says nothing.
    (twice,) = _audit(site, "privacy.approval_withdrawal_refused")
    assert (twice["actor"], twice["detail"]["refused"]) == ("ada", "conflict")
    assert twice["objects"] == [f"case:{case}", f"approval:{third}"]
    assert _ask(site, "analyst", case, reason="test").status_code == 422
    (empty,) = _audit(site, "privacy.approval_request_refused")
    assert (empty["actor"], empty["objects"], empty["detail"]["refused"]) == (
        "ann",
        [f"case:{case}"],
        "invalid-input",
    )


def test_no_one_approves_their_own_request(four_eyes: Site) -> None:
    site = four_eyes
    case = _case_of_lines(site, "own", "13900000001", "140102198001010011")
    own = _ask(site, "admin", case)
    assert own.status_code == 201, own.text
    mine = _decide(site, "admin", own.json()["id"], "approved")
    assert mine.status_code == 403
    assert "is your own: another user who may approve" in mine.json()["detail"]
    (refused,) = _audit(site, "privacy.approval_decision_refused")
    assert refused["objects"] == [f"case:{case}", f"approval:{own.json()['id']}"]
    assert _reveal(site, "admin", _line_of(site, case), REASON, case).status_code == 403


def test_a_handover_with_clear_values_needs_an_approval_for_each_case(four_eyes: Site) -> None:
    site = four_eyes
    first = _case_of_lines(site, "h1", "13900000001", "140102198001010011")
    second = _case_of_lines(site, "h2", "13900000003", "140102198001010022")
    asked = _ask(site, "analyst", first).json()["id"]
    assert _decide(site, "admin", asked, "approved").status_code == 200

    def hand_over() -> Any:
        return site.client.post(
            "/api/v1/fraud/handovers",
            json={
                "cases": [first, second],
                "agency": "POLICE-AF",
                "note": "for the police",
                "reveal_reason": REASON,
            },
            headers=site.as_role("analyst"),
        )

    refused = hand_over()
    assert refused.status_code == 403, refused.text
    assert f"case {second} needs another user's approval" in refused.json()["detail"]
    assert _audit(site, "privacy.reidentify") == []
    statuses = site.client.get("/api/v1/fraud/cases", headers=site.as_role("analyst")).json()
    assert {c["status"] for c in statuses if c["id"] in (first, second)} == {"in_review"}

    asked = _ask(site, "analyst", second).json()["id"]
    assert _decide(site, "admin", asked, "approved").status_code == 200
    handed = hand_over()
    assert handed.status_code == 200, handed.text
    revealed = _audit(site, "privacy.reidentify")
    assert {o for e in revealed for o in e["objects"] if o.startswith("case:")} == {
        f"case:{first}",
        f"case:{second}",
    }
    # The package's clear numbers were approved for its maker: the agency and the maker
    # fetch it; another user of the administration, with no approval, does not.
    name = handed.headers["content-disposition"].split('filename="')[1].rstrip('"')
    package = f"/api/v1/fraud/handovers/POLICE-AF/{name}"
    assert site.client.get(package, headers=site.as_role("analyst")).status_code == 200
    assert site.client.get(package, headers=site.as_role("liaison")).status_code == 200
    other = site.client.get(package, headers=site.as_role("admin"))
    assert other.status_code == 403, other.text
    assert "only its maker and the agency may fetch it" in other.json()["detail"]
    (kept,) = _audit(site, "fraud.handover.refused")
    assert kept["actor"] == "ada"


def test_without_the_setting_nothing_is_asked_for(site: Site) -> None:
    case = _case_of_lines(site, "off", "13900000001", "140102198001010011")
    (stranger,) = _in_vault(site, "13812341234")
    assert _reveal(site, "analyst", stranger, REASON).status_code == 200
    off = _ask(site, "analyst", case)
    assert off.status_code == 422
    assert "needs no approval" in off.json()["detail"]
    page = _signed_in(site, "ann").get(f"/fraud/cases/{case}")
    assert page.status_code == 200
    assert 'id="case-history"' in page.text
    assert 'id="approval-form"' not in page.text
    assert 'id="approvals-link"' not in _signed_in(site, "ada").get("/").text


def _signed_in(site: Site, username: str) -> TestClient:
    """A browser of ``username``'s, reading the pages in English (what they say is checked
    in the words of the source, whatever the Chinese catalogue holds)."""
    client = TestClient(site.client.app, follow_redirects=True)
    site.login(client, username, PASSWORD)
    client.get("/lang/en?next=/")
    return client


def test_asked_for_on_the_cases_page_and_decided_in_the_approvers_queue(four_eyes: Site) -> None:
    site = four_eyes
    case = _case_of_lines(site, "pages", "13900000001", "140102198001010011")
    analyst, admin = _signed_in(site, "ann"), _signed_in(site, "ada")

    page = analyst.get(f"/fraud/cases/{case}")
    assert 'id="approval-form"' in page.text
    assert 'id="approvals-link"' not in page.text, "the approvers' queue is the admins'"
    asked = analyst.post(
        f"/fraud/cases/{case}/approval",
        data={"reason": REASON, "csrf_token": csrf_of(page.text)},
    )
    assert asked.status_code == 200
    assert "awaiting an approver" in asked.text
    assert 'id="approval-form"' not in asked.text
    assert analyst.get("/admin/approvals").status_code == 403

    queue = admin.get(f"/fraud/cases/{case}")
    assert 'id="approvals-link"' in queue.text
    queue = admin.get("/admin/approvals")
    assert REASON in queue.text
    (request,) = _decide_ids(site)
    decided = admin.post(
        f"/admin/approvals/{request}",
        data={"decision": "approved", "note": "JQ-7 on file", "csrf_token": csrf_of(queue.text)},
    )
    assert decided.status_code == 200
    assert "No request awaits a decision." in decided.text
    assert "approved by ada until" in decided.text
    again = admin.post(
        f"/admin/approvals/{request}",
        data={"decision": "refused", "note": "late", "csrf_token": csrf_of(queue.text)},
    )
    assert "decided already" in again.text

    now = analyst.get(f"/fraud/cases/{case}")
    assert "approved by ada until" in now.text
    assert "re-identification approved" in now.text, "the case's history shows the decision"
    assert _reveal(site, "analyst", _line_of(site, case), REASON, case).status_code == 200


def _decide_ids(site: Site) -> list[int]:
    pending = site.client.get("/api/v1/privacy/approvals", headers=site.as_role("admin"))
    return [r["id"] for r in pending.json() if r["status"] == "pending"]


def test_approvals_on_each_state_db(db_settings: Settings) -> None:
    """The service on SQLite and PostgreSQL: the compare-and-set of a decision, the expiry
    compared in UTC, the refusal of a second decision kept though its step rolls back."""
    from telereg.core import approvals, privacy
    from telereg.core.errors import ApprovalRequiredError, ConflictError
    from telereg.core.models import AuditEntry
    from telereg.core.permissions import Role
    from tests.conftest import principal_of_role

    settings = db_settings.model_copy(update={"reidentify_needs_approval": True})
    analyst, admin = principal_of_role(Role.ANALYST), principal_of_role(Role.ADMIN)
    with session_scope(settings) as s:
        asked = approvals.request_approval(
            s, settings=settings, principal=analyst, case_id=7, reason=REASON
        )
        with pytest.raises(ApprovalRequiredError):
            privacy.require_approval(s, actor=analyst.name, case_id=7)
        approvals.decide(
            s, settings=settings, principal=admin, request_id=asked.id, approve=True, note="ok"
        )
        privacy.require_approval(s, actor=analyst.name, case_id=7)
        held = privacy.approval_in_force(s, actor=analyst.name, case_id=7)
        assert held is not None
        assert held.expires_at is not None
        assert (
            privacy.approval_in_force(
                s, actor=analyst.name, case_id=7, now=held.expires_at + timedelta(seconds=1)
            )
            is None
        )
        request_id = asked.id
    with session_scope(settings) as s, pytest.raises(ConflictError), s.begin_nested():
        approvals.decide(
            s,
            settings=settings,
            principal=admin,
            request_id=request_id,
            approve=False,
            note="late",
        )
    with session_scope(settings) as s:
        kept = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("privacy.approval%"))
        ).all()
        assert sorted(kept) == [
            "privacy.approval_decision_refused",
            "privacy.approval_granted",
            "privacy.approval_requested",
        ]


def test_an_approval_is_asked_only_for_a_case_with_values_to_reveal(four_eyes: Site) -> None:
    from telereg.cases import service as cases
    from telereg.domains.buildout import obstacles
    from tests.conftest import ROOT

    with session_scope(four_eyes.settings) as s:
        new = cases.NewCase("obstacle:1", "a site refused by its landlord", {"site_id": "TY-1"})
        (case,) = cases.open_cases(s, principal=ROOT, workflow=obstacles.WORKFLOW, new=[new])
        case_id = case.id
    asked = _ask(four_eyes, "analyst", case_id)
    assert asked.status_code == 422, asked.text
    assert f"case {case_id} names no values to re-identify" in asked.json()["detail"]
    assert _ask(four_eyes, "analyst", 99999).status_code == 404
