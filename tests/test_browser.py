"""End-to-end check of the web shell in a real browser: sign-in and the language switch.

The server runs as ``telereg serve`` in its own process, exactly as an operator starts it,
so the test also covers the CLI wiring, the uvicorn factory and the cookie round trips.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from telereg import registry
from telereg.core.db import utcnow
from telereg.core.principal import cli_principal
from telereg.core.settings import load_settings
from telereg.ingest.service import ingest_file
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario

if TYPE_CHECKING:
    # Playwright is imported lazily at run time, like the other optional heavy imports.
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 20.0
# Generous per-action timeout: the whole test stays well under 30 s, yet a slow CI
# machine does not turn a working page into a flaky failure.
ACTION_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Server:
    base_url: str
    username: str
    password: str


def _free_port() -> int:
    # Port 0 lets the kernel pick; the tiny race until uvicorn binds it is acceptable here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"telereg serve exited with code {process.returncode} before answering "
                f"{url}; its output:\n{log.read_text(errors='replace')}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
            last_error = "health endpoint answered with a non-200 status"
        except httpx.HTTPError as error:
            last_error = repr(error)
        time.sleep(0.1)
    pytest.fail(
        f"telereg serve did not answer {url} within {STARTUP_TIMEOUT_S:.0f} s "
        f"(last error: {last_error}); its output:\n{log.read_text(errors='replace')}"
    )


HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_CORRIDOR = {
    "type": "Feature",
    "properties": {"corridor_id": "X-1", "name": HOSTILE_NAME, "kind": "expressway"},
    "geometry": {"type": "LineString", "coordinates": [[112.0, 37.0], [112.5, 37.5]]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    settings = load_settings(data_dir=data_dir)
    login = prepare(settings, principal=cli_principal("test"))
    started = utcnow()
    # The demo's data (build-out and anti-fraud) and a fraud scan of its latest month.
    run_scenario(
        settings,
        principal=cli_principal("test"),
        scale=Scale.SMALL,
        seed=5,
        synthesizers=registry.SYNTHESIZERS,
        contracts=registry.CONTRACTS,
    )
    # A corridor whose name is markup, as a careless or hostile sender could submit it.
    corridor = root / "corridor.geojson"
    corridor.write_text(json.dumps({"type": "FeatureCollection", "features": [HOSTILE_CORRIDOR]}))
    record = ingest_file(
        settings,
        principal=cli_principal("test"),
        contract=registry.contract("corridors"),
        path=corridor,
        filename=corridor.name,
        operator="CA",
    )
    assert record.status == "accepted", record.message
    registry.run_analyses(settings, principal=cli_principal("test"), since=started)
    port = _free_port()
    log = root / "serve.log"
    with log.open("wb") as output:
        # cwd is the temp dir so nothing the server writes by default lands in the checkout.
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "telereg",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=root,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, f"{base_url}/api/v1/health", log)
        yield Server(base_url=base_url, username=login.username, password=login.password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_sign_in_and_switch_language(browser: Browser, server: Server) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()

        def sign_in(password: str) -> None:
            page.fill("input[name=username]", server.username)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")

        def expect_chinese(current: Page) -> None:
            expect(current.locator("h1")).to_have_text("系统状态")
            expect(current.locator("nav.sidebar")).to_contain_text("总览")
            expect(current.locator("body")).not_to_contain_text("System status")
            expect(current.locator("nav.sidebar")).not_to_contain_text("Overview")

        # An anonymous visitor is sent to the sign-in page, in Chinese by default.
        page.goto(f"{server.base_url}/")
        expect(page).to_have_url(re.compile(rf"^{re.escape(server.base_url)}/login(\?|$)"))
        expect(page.locator("h1")).to_have_text("登录")

        # A wrong password keeps the visitor on the form with a translated error.
        sign_in("not-the-password")
        expect(page.locator("[role=alert]")).to_contain_text("用户名或密码错误")

        sign_in(server.password)
        expect(page).to_have_url(f"{server.base_url}/")
        expect_chinese(page)

        page.click("a.lang[hreflang=en]")
        expect(page).to_have_url(f"{server.base_url}/")
        expect(page.locator("h1")).to_have_text("System status")
        expect(page.locator("nav.sidebar")).to_contain_text("Overview")
        expect(page.locator("body")).not_to_contain_text("系统状态")
        expect(page.locator("nav.sidebar")).not_to_contain_text("总览")

        page.click("a.lang[hreflang=zh_CN]")
        expect(page).to_have_url(f"{server.base_url}/")
        expect_chinese(page)

        # The API documentation renders from the package's own copy of Swagger UI (the
        # machines that run this have no internet), with the endpoints listed.
        page.goto(f"{server.base_url}/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("telereg")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
    finally:
        context.close()


def test_corridor_map_page(browser: Browser, server: Server) -> None:
    """The build-out page draws the corridor map and lists the uncovered stretches."""
    from playwright.sync_api import expect

    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.base_url}/buildout")
        page.fill("input[name=username]", server.username)
        page.fill("input[name=password]", server.password)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{server.base_url}/buildout")
        expect(page.locator("h1")).to_contain_text("网络建设")
        # The first visit computes coverage (and the H3 grid) for the whole province.
        expect(page.locator("#stat-hsr")).to_have_text(re.compile(r"^\d+\.\d%$"), timeout=60_000)
        # ECharts draws the map into a canvas once the API data arrived.
        expect(page.locator("#corridor-map canvas").first).to_be_visible()
        expect(page.locator("#gap-table tbody tr").first).to_be_visible()
        assert page.locator("#gap-table tbody tr").count() >= 1
        expect(page.locator("#gigabit-total")).to_have_text("55.1%")
        # Counts are grouped by thousands and densities have two decimals, as in the cards.
        sites = page.locator("#beidou-table tbody td:nth-child(2)").all_inner_texts()
        assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in sites), sites
        assert any("," in t for t in sites), sites
        densities = page.locator("#gigabit-table tbody td:nth-child(3)").all_inner_texts()
        assert all(re.match(r"\d+\.\d\d ", t) for t in densities), densities
        # Tables sort by a click on a header.
        rows = page.locator("#corridor-table tbody tr")
        page.click("#corridor-table thead th >> nth=2")
        lengths = [
            float(t.replace(",", "")) for t in rows.locator("td:nth-child(3)").all_inner_texts()
        ]
        assert lengths == sorted(lengths)
        page.click("#corridor-table thead th >> nth=2")
        lengths = [
            float(t.replace(",", "")) for t in rows.locator("td:nth-child(3)").all_inner_texts()
        ]
        assert lengths == sorted(lengths, reverse=True)
        assert page.locator("#problem").is_hidden()
        # Names from the data are shown as text, never run as markup.
        hostile = page.locator("#corridor-table tbody tr", has_text="X-1")
        expect(hostile).to_contain_text(HOSTILE_NAME)
        assert page.locator("#corridor-table img, #gap-table img").count() == 0
        assert page.title() != "pwned"
    finally:
        context.close()


def test_fraud_pages_from_dashboard_to_hand_over(browser: Browser, server: Server) -> None:
    """The fraud dashboard draws its charts; a suspect's page explains it; a case is handed over."""
    from playwright.sync_api import expect

    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.base_url}/fraud")
        page.fill("input[name=username]", server.username)
        page.fill("input[name=password]", server.password)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{server.base_url}/fraud")
        expect(page.locator("h1")).to_contain_text("反诈")
        expect(page.locator("#stat-simbox")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
        expect(page.locator("#rings canvas").first).to_be_visible()
        expect(page.locator("#by-operator canvas").first).to_be_visible()
        assert page.locator("#domain-table tbody tr").count() >= 1
        assert page.locator("#problem").is_hidden()
        # The model's note and the domains' reasons are in the page's language.
        expect(page.locator("#model")).to_contain_text("规则")
        expect(page.locator("#domain-table")).not_to_contain_text("risky_tld")
        # Suspects come a page at a time; the filters narrow them.
        expect(page.locator("#suspect-range")).to_contain_text(re.compile(r"^1–"))
        everyone = page.locator("#suspect-count").inner_text()
        page.select_option("#suspect-filter select[name=kind]", "card")
        expect(page.locator("#suspect-count")).not_to_have_text(everyone)
        expect(page.locator("#suspect-table tbody tr").first).to_contain_text("断卡")
        expect(page.locator("#suspect-table tbody")).not_to_contain_text("猫池")
        expect(page.locator("#suspect-csv")).to_have_attribute("href", re.compile("kind=card"))
        page.select_option("#suspect-filter select[name=kind]", "")
        expect(page.locator("#suspect-count")).to_have_text(everyone)
        page.locator("#suspect-table tbody tr a").first.click()
        expect(page.locator("#feature-table tbody tr").first).to_be_visible()
        expect(page.locator("#by-day canvas").first).to_be_visible()
        # rules are named in the page's language, not by their codes
        expect(page.locator("#score")).to_contain_text("与其他号码同开同关天数")
        expect(page.locator("#score")).not_to_contain_text("cohort_days")
        # a rule met marks the feature it looks at: "no text messages" marks the SMS count
        expect(page.locator("#score")).to_contain_text("无短信")
        expect(page.locator("#feature-table tr.flagged", has_text="短信条数")).to_be_visible()
        # the linked lines are drawn (the page's script ran to its end)
        expect(page.locator("#links canvas").first).to_be_visible()
        # the suspect's cases, for who manages them
        expect(page.locator("#line-cases a").first).to_have_attribute(
            "href", re.compile(r"^/fraud/cases/[0-9]+$")
        )

        page.goto(f"{server.base_url}/fraud/cases?status=open")
        first = page.locator("#case-table tbody tr").first
        case_id = first.get_attribute("id").removeprefix("case-")
        first.locator("select[name=to]").select_option("in_review")
        first.locator("input[name=note]").fill("gateway pattern")
        first.locator("button[type=submit]").click()
        # back on the queue as it was filtered, at the case's row
        expect(page).to_have_url(f"{server.base_url}/fraud/cases?status=open#case-{case_id}")
        page.goto(f"{server.base_url}/fraud/cases?status=in_review")
        page.check(f"input[name=case][value='{case_id}']")
        page.select_option("#handover-form select[name=agency]", "POLICE-AF")
        page.fill("#handover-form input[name=note]", "for investigation")
        # Enter in the move's note submits nothing (not the hand-over, the form's first step)
        page.select_option("#move-ticked select[name=to]", "closed")
        page.fill("#move-ticked input[name=move_note]", "dismissed")
        page.press("#move-ticked input[name=move_note]", "Enter")
        page.wait_for_timeout(500)
        expect(page).to_have_url(f"{server.base_url}/fraud/cases?status=in_review")
        page.click("#make-package")
        expect(page.locator("p.ok a")).to_contain_text("POLICE-AF/handover-")
        page.goto(f"{server.base_url}/fraud/cases?status=referred")
        expect(page.locator(f"#case-{case_id}")).to_contain_text("省公安厅反诈中心")
        # The case's own page tells what happened to it, step by step.
        page.locator(f"#case-{case_id} a[href='/fraud/cases/{case_id}']").click()
        history = page.locator("#case-history tbody")
        expect(history).to_contain_text("立案")
        expect(history).to_contain_text("→ 研判中")
        expect(history).to_contain_text("gateway pattern")
        expect(history).to_contain_text("移交 省公安厅反诈中心")
        expect(history).to_contain_text("for investigation")
    finally:
        context.close()


def test_a_new_user_changes_the_one_time_password_on_the_account_page(
    browser: Browser, server: Server
) -> None:
    """An administrator adds a user; the user signs in with the one-time password, replaces
    it on "My account", and from then on signs in with their own."""
    from playwright.sync_api import expect

    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()

        def sign_in(username: str, password: str) -> None:
            page.goto(f"{server.base_url}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")

        sign_in(server.username, server.password)
        page.goto(f"{server.base_url}/admin/users")
        page.fill("form[action='/admin/users'] input[name=username]", "new.analyst")
        page.select_option("form[action='/admin/users'] select[name=role]", "analyst")
        page.click("form[action='/admin/users'] button[type=submit]")
        one_time = page.locator("#new-password").inner_text()
        context.clear_cookies()

        sign_in("new.analyst", one_time)
        expect(page).to_have_url(f"{server.base_url}/")
        page.click("details.usermenu summary")
        page.click("#my-account")
        expect(page).to_have_url(f"{server.base_url}/account")
        expect(page.locator("h1")).to_have_text("我的账户")
        expect(page.locator("#me")).to_contain_text("new.analyst")
        mine = "my very own passphrase"
        page.fill("input[name=current_password]", one_time)
        page.fill("input[name=new_password]", mine)
        page.fill("input[name=new_password_again]", mine)
        page.click("#password button[type=submit]")
        expect(page.locator("#done")).to_contain_text("密码已修改")
        expect(page.locator("#me")).to_contain_text("new.analyst")  # still signed in

        page.click("details.usermenu summary")
        page.click("details.usermenu form button")
        sign_in("new.analyst", one_time)
        expect(page.locator("[role=alert]")).to_contain_text("用户名或密码错误")
        sign_in("new.analyst", mine)
        expect(page).to_have_url(f"{server.base_url}/")
        expect(page.locator("details.usermenu summary")).to_contain_text("new.analyst")
    finally:
        context.close()
