"""Swagger UI and ReDoc render in a real browser that can reach nothing but this server.

The app is served by werkzeug on a free loopback port (over the test Neo4j, like every API
test). Headless Chromium (Debian's ``chromium``) loads each page with every host name except
127.0.0.1 resolving to nothing, lets the scripts run, and dumps the DOM: the page must list
every operation of the OpenAPI document. Chromium's network log must show that the page asked
nothing of any other host. Without a browser these tests fail and say how to get one.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from api.openapi import DOCS_CSP

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HOW_TO_GET = ("install Debian's chromium (as root: apt-get install -y chromium); "
              ".ci/run does this itself")
PAGES = {"/api/v1/docs": "Swagger UI", "/api/v1/redoc": "ReDoc"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
QUIET = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--disable-default-apps")
"""Root in a container needs no sandbox; the rest keeps Chromium's own traffic down."""
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Every other host name fails to resolve, as on a machine with no internet."""


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path; a failure, never a skip, when there is none."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}): "
                f"{HOW_TO_GET}", pytrace=False)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """``app`` behind a real HTTP server on a free loopback port; its origin."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="docs-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


def render(browser: str, url: str, workdir: Path) -> tuple[str, list[tuple[str, str]]]:
    """The DOM of ``url`` once its scripts have run, and the (initiator, url) of every
    request Chromium made while loading it."""
    netlog = workdir / "netlog.json"
    command = [browser, *QUIET, LOOPBACK_ONLY, f"--user-data-dir={workdir / 'profile'}",
               f"--log-net-log={netlog}", "--virtual-time-budget=15000", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout, requests_in(netlog)


def requests_in(netlog: Path) -> list[tuple[str, str]]:
    """The URL requests in a Chromium net log; the initiator is the origin of the page that
    asked, or "not an origin" for the browser's own traffic and the page itself."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    begun = [event.get("params", {}) for event in log["events"] if event["type"] == start]
    return [(params.get("initiator", ""), params["url"]) for params in begun if "url" in params]


def operations(app: Flask) -> list[tuple[str, str, str]]:
    """(method, path, summary) of every operation in the app's OpenAPI document."""
    spec: dict[str, Any] = app.test_client().get("/api/v1/openapi.json").get_json()
    return [(method, path, item[method]["summary"])
            for path, item in spec["paths"].items() for method in item if method in METHODS]


@pytest.mark.parametrize("page", PAGES)
def test_the_page_lists_every_operation_with_no_host_but_this_one(
        page: str, app: Flask, served: str, browser: str, tmp_path: Path) -> None:
    dom, requests = render(browser, served + page, tmp_path)
    expected = operations(app)
    assert len(expected) > 20
    missing = [(method, path) for method, path, summary in expected
               if path not in dom or html.escape(summary, quote=False) not in dom]
    assert not missing, f"{PAGES[page]} did not render these operations: {missing}"
    asked = {url for initiator, url in requests if initiator == served}
    assert f"{served}/api/v1/openapi.json" in asked  # the log holds the page's requests
    assert any("/api/v1/docs-assets/" in url for url in asked)
    elsewhere = sorted(url for url in asked if not url.startswith(served + "/"))
    assert not elsewhere, f"{PAGES[page]} asked other hosts: {elsewhere}"


@pytest.mark.parametrize("page", PAGES)
def test_the_page_names_no_other_host_and_forbids_loading_from_one(
        page: str, make_app: Callable[..., Flask]) -> None:
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    response = client.get(page)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "http://" not in text and "https://" not in text
    assert response.headers["Content-Security-Policy"] == DOCS_CSP
    assert "default-src 'self'" in DOCS_CSP and "*" not in DOCS_CSP


@pytest.mark.parametrize("asset", [
    "swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui-standalone-preset.js",
    "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js"])
def test_the_assets_are_served_without_a_token(
        asset: str, make_app: Callable[..., Flask]) -> None:
    """Like the pages that load them, the files are documentation: no token asked."""
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    response = client.get(f"/api/v1/docs-assets/{asset}")
    assert response.status_code == 200
    assert response.mimetype in {"text/javascript", "application/javascript", "text/css"}
    assert len(response.get_data()) > 100_000
    response.close()
