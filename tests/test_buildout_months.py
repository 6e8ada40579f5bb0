"""Build-out figures by month: months without sites, the first month, the default month."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from telereg import registry
from telereg.app import create_app
from telereg.core import accounts
from telereg.core.db import dispose_engines, session_scope
from telereg.core.settings import Settings, load_settings
from telereg.ingest.service import ingest_file
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario, scenario_dir
from tests.conftest import PASSWORD, ROOT


@dataclass
class Demo:
    settings: Settings
    client: TestClient

    def demo_file(self, operator: str, name: str) -> Path:
        return scenario_dir(self.settings, Scale.SMALL, SEED) / "operators" / operator / name

    def send(self, path: Path, dataset: str, *, operator: str, period: str) -> None:
        record = ingest_file(
            self.settings,
            principal=ROOT,
            contract=registry.contract(dataset),
            path=path,
            filename=path.name,
            operator=operator,
            period=period,
        )
        assert record.status in ("accepted", "partial"), record.message


SEED = 5


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The small demo's build-out files: sites and fibre for 2021-10 and 2021-11."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("months") / "var")
    prepare(settings, principal=ROOT)
    run_scenario(
        settings,
        principal=ROOT,
        scale=Scale.SMALL,
        seed=SEED,
        synthesizers=registry.SYNTHESIZERS[:1],
        contracts=registry.CONTRACTS,
    )
    with session_scope(settings) as session:
        accounts.create_user(
            session, principal=ROOT, username="vic", role="viewer", password=PASSWORD
        )
        token = accounts.issue_token(session, principal=ROOT, username="vic").token
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"})
    yield Demo(settings, client)
    dispose_engines()


@pytest.mark.parametrize(
    "url",
    [
        "sites?period=2020-01",
        "figures?period=2020-01",
        "coverage?period=2020-01",
        "export/site_counts?period=2021-09",
        "export/targets?period=2021-09",
        "report?region=140000&period=2021-09&format=html",
    ],
)
def test_a_month_without_sites_is_not_found(demo: Demo, url: str) -> None:
    response = demo.client.get(f"/api/v1/buildout/{url}")
    assert response.status_code == 404, response.text
    assert "no site data for 20" in response.json()["detail"]


def test_the_first_month_has_a_report_without_comparison(demo: Demo) -> None:
    response = demo.client.get(
        "/api/v1/buildout/report?region=140000&period=2021-10&format=html&lang=en"
    )
    assert response.status_code == 200, response.text
    figures = response.text.split("Key figures", 1)[1].split("</table>", 1)[0]
    five_g = figures.split("5G sites in service", 1)[1].split("</tr>", 1)[0]
    assert five_g.count("—") == 2, "no figure for 2021-09, and no change"


def test_a_report_is_for_the_province_or_a_city(demo: Demo) -> None:
    county = demo.client.get("/api/v1/buildout/report?region=140105&period=2021-11&format=html")
    assert county.status_code == 422
    assert "140105 小店区 is a county" in county.json()["detail"]


def test_a_download_is_named_with_its_month(demo: Demo) -> None:
    for table, period in (("site_counts", "2021-10"), ("targets", "2021-11"), ("gaps", "2021-11")):
        response = demo.client.get(f"/api/v1/buildout/export/{table}?period={period}")
        assert response.status_code == 200
        disposition = response.headers["content-disposition"]
        assert f'filename="buildout-{table}-{period}.csv"' in disposition


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["report", "--out", "/nonexistent/dir/y.pdf"], "no such directory: /nonexistent/dir"),
        (["report", "--out", "{tmp}/y.html", "--language", "fr"], "--language must be zh_CN"),
        (["report", "--out", "{tmp}/y.html", "--region", "140105"], "140105 小店区 is a county"),
        (
            ["coverage", "--period", "2021-13"],
            "period '2021-13' is not a valid month: the month is 01 to 12",
        ),
    ],
)
def test_the_cli_refuses_in_one_line(
    demo: Demo, tmp_path: Path, args: list[str], said: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    if args[0] == "report":
        args = [*args, "--period", "2021-11"] + (
            [] if "--region" in args else ["--region", "140000"]
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "telereg",
            "buildout",
            *args,
            "--data-dir",
            str(demo.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert said in result.stderr
    assert not list(tmp_path.iterdir()), "nothing written"


def test_a_report_does_not_replace_an_existing_file(demo: Demo, tmp_path: Path) -> None:
    earlier = tmp_path / "shanxi.html"
    earlier.write_text("last month's report")
    args = ["--region", "140000", "--period", "2021-11", "--format", "html", "--out", str(earlier)]
    where = ["--data-dir", str(demo.settings.data_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "telereg", "buildout", "report", *args, *where],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"--out: {earlier} exists; choose another file" in result.stderr
    assert earlier.read_text() == "last month's report"


def test_projects_and_targets_are_counted_once(demo: Demo, tmp_path: Path) -> None:
    # The same project list for October too: each month counts its projects once.
    projects = demo.demo_file("CA", "universal_service.xlsx")
    demo.send(projects, "universal_service", operator="CA", period="2021-10")
    for period in ("2021-10", "2021-11"):
        figures = demo.client.get(f"/api/v1/buildout/figures?period={period}").json()
        assert sum(p["projects"] for p in figures["projects"]) == 30, period
    # A later file revises one target: it is shown once, revised.
    header, first, *_ = demo.demo_file("CA", "targets.csv").read_text().splitlines()
    assert first == '"140000",2022,"new_5g_sites",600'
    revised = tmp_path / "targets.csv"
    revised.write_text(f"{header}\n{first.replace(',600', ',650')}\n")
    demo.send(revised, "targets", operator="CA", period="2021-12")
    targets = demo.client.get("/api/v1/buildout/figures?period=2021-11").json()["targets"]
    keys = [(t["region_code"], t["year"], t["indicator"]) for t in targets]
    assert len(keys) == len(set(keys)) > 1
    assert ("140000", 2022, "new_5g_sites") in keys
    assert (
        next(
            t["target"]
            for t in targets
            if t["indicator"] == "new_5g_sites"
            and t["year"] == 2022
            and t["region_code"] == "140000"
        )
        == 650
    )


def test_one_operators_next_month_does_not_switch_the_default(demo: Demo, tmp_path: Path) -> None:
    lines = demo.demo_file("CMCC", "2021-11/sites.csv").read_text().splitlines()
    early = tmp_path / "sites.csv"
    early.write_text("\n".join(lines[:51]) + "\n")
    demo.send(early, "sites", operator="CMCC", period="2021-12")
    shown = demo.client.get("/api/v1/buildout/coverage").json()
    assert (shown["period"], len(shown["operators"])) == ("2021-11", 4), "every operator's month"
    asked = demo.client.get("/api/v1/buildout/coverage?period=2021-12").json()
    assert (asked["period"], asked["operators"]) == ("2021-12", ["CMCC"]), "what it has"


def test_the_english_report_names_corridors_in_english(demo: Demo) -> None:
    english = demo.client.get(
        "/api/v1/buildout/report?region=140000&period=2021-11&format=html&lang=en"
    ).text
    stretches = english.split("Uncovered stretches", 1)[1].split("</table>", 1)[0]
    assert "<td>" in stretches, "the small demo has uncovered stretches"
    names = [cell.split("</td>", 1)[0] for cell in stretches.split("<tr><td>")[1:]]
    assert names, stretches
    assert not any("\u4e00" <= ch <= "\u9fff" for name in names for ch in name), names
    # The key-area target is measured by the population covered, and says so.
    assert "<td>key-area coverage (population covered)</td>" in english


def test_a_city_without_population_has_no_density_and_ranks_last() -> None:
    import ibis

    from telereg.domains.buildout import analysis

    sites = ibis.memtable(
        {
            "operator": ["CMCC", "CMCC", "CUCC"],
            "site_id": ["S1", "S2", "S3"],
            "city_code": ["140100", "140200", "140200"],
            "technology": ["5G", "5G", "5G"],
            "status": ["in_service"] * 3,
        }
    )
    population = ibis.memtable({"code": ["140100", "140200"], "population": [1_000_000, 0]})
    rows = ibis.duckdb.connect().execute(analysis.five_g_density(sites, population))
    by_code = rows.set_index("code")
    assert by_code.loc["140100", "per_10k"] == 0.01
    assert by_code.loc["140200", "sites"] == 2
    assert by_code.loc["140200", "per_10k"] != by_code.loc["140200", "per_10k"], "no figure (NaN)"
    assert list(rows["code"]) == ["140100", "140200"], "the city with no figure comes last"


def test_the_demo_summary_counts_only_the_obstacle_cases_it_opened(demo: Demo) -> None:
    from datetime import UTC, datetime

    from telereg.cases.service import cases
    from telereg.core.db import utcnow
    from telereg.domains.buildout.obstacles import WORKFLOW
    from telereg.domains.buildout.service import run_analyses

    with session_scope(demo.settings) as session:
        every = len(cases(session, principal=ROOT, workflow=WORKFLOW))
    assert every > 0
    since_ever = run_analyses(demo.settings, principal=ROOT, since=datetime(2000, 1, 1, tzinfo=UTC))
    assert f"{every} site-obstacle cases opened" in since_ever
    # A demo run again opens none: its files were sent before.
    again = run_analyses(demo.settings, principal=ROOT, since=utcnow())
    assert "0 site-obstacle cases opened" in again
