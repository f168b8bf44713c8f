"""The portal beside a config file: the catalog and the APIs' pages read the file;
what would change it (an app, a key, a subscription request) is refused with a page
that says why and where such things are made, never an error of the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quiver.admin import create_app as admin_app
from quiver.admin.declarations import FileDeclarations
from quiver.store import Store
from quiver.web.site import mount_pages
from tests.admin.server import serving
from tests.support.catalog import built_in
from tests.web.test_portal_pages import post, sign_up

CONFIG = """\
targets:
  - name: shop
    url: http://127.0.0.1:9
routes:
  - name: orders
    paths: ["/orders"]
    target: shop
apis:
  - name: orders
    title: Orders API
    routes: [orders]
    state: published
    plans: [{name: starter, approval: manual}]
consumers:
  - name: declared-app
"""


@pytest.fixture
def file_site(tmp_path: Path, store: Store) -> Iterator[httpx.Client]:
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    app = admin_app(FileDeclarations(str(path)), store, built_in())
    mount_pages(app, https=False)
    with (
        serving(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as client,
    ):
        yield client


def test_the_catalog_reads_the_file_and_changes_are_refused_with_a_reason(
    file_site: httpx.Client,
) -> None:
    team = sign_up(file_site, "ada@example.com")
    assert "Orders API" in file_site.get("/portal/apis").text
    assert "starter" in file_site.get("/portal/apis/default.orders").text

    made = post(file_site, f"/portal/apps?team={team}", "/portal/apps", team=team, name="mine")
    assert made.status_code == 400
    assert "config comes from a file" in made.text and "store mode" in made.text
