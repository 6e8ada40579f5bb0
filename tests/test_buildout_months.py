"""Build-out figures by month: months without sites, the first month, the default month."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from telereg import registry
from telereg.app import create_app
from telereg.core import accounts
from telereg.core.db import dispose_engines, session_scope
from telereg.core.settings import Settings, load_settings
from telereg.scenario.demo import prepare
from telereg.scenario.model import Scale
from telereg.scenario.runner import run_scenario
from tests.conftest import PASSWORD, ROOT


@dataclass
class Demo:
    settings: Settings
    client: TestClient


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The small demo's build-out files: sites and fibre for 2021-10 and 2021-11."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("months") / "var")
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
