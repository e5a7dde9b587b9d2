"""The status page in a real headless Chromium (Playwright driving Debian's chromium).

Starts an LB with an admin port and real backends, then checks that the page
shows them, that an ejection appears without a reload, that a killed backend
disappears, and takes a screenshot: the README's (``docs/status-page.png``) when
``LOOKASIDE_UPDATE_SCREENSHOT=1``, else a throwaway one, so a test run leaves the tree clean.
Under ``CI=true`` a missing browser fails the test instead of skipping it.

Playwright runs on the test's event loop, so the cluster's blocking helpers
(which run event loops of their own) are called through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc import aio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.admin_helpers import admin_url, backend_ids
from tests.integration.harness import Cluster, LoadRun, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"
UPDATE_SCREENSHOT = os.environ.get("LOOKASIDE_UPDATE_SCREENSHOT") == "1"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing (apt-get install chromium); CI needs it")
        pytest.skip("no Chromium here (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def eject(lb_target: str, backend_id: str) -> None:
    """Tell the LB, as a client would, that every call to ``backend_id`` failed."""
    async with aio.insecure_channel(lb_target) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        stats = pb.BackendCallStats(backend_id=backend_id, calls_finished=20, calls_failed=20)
        await stub.ReportClientStats(
            pb.ClientStats(client_id="page-test", service_name="compute", per_backend=[stats]),
            timeout=5,
        )


def row(page: Page, backend_id: str) -> Locator:
    return page.locator(f'tr[data-backend-id="{backend_id}"]')


async def start(
    cluster: Cluster, policy: str, ids: set[str], *lb_args: str, work_ms: float = 3
) -> str:
    """An LB with an admin port and backends ``ids``; returns the admin URL."""
    lb = await asyncio.to_thread(cluster.start_lb, policy, "--admin-port", "0", *lb_args)
    base = admin_url(lb)
    for backend_id in sorted(ids):
        await asyncio.to_thread(cluster.start_backend, backend_id, work_ms=work_ms)
    await asyncio.to_thread(cluster.wait_registered, ids)
    return base


async def test_page_shows_the_fleet_live(
    cluster: Cluster, browser: Browser, tmp_path: Path
) -> None:
    ids = {"alpha", "bravo", "charlie", "delta"}
    base = await start(
        cluster, "least_load", ids, "--service-policy", "search=round_robin", work_ms=20
    )
    await asyncio.to_thread(cluster.start_backend, "search-1", "--service", "search")
    await asyncio.to_thread(
        wait_until, lambda: "search-1" in backend_ids(base), 15, "search-1 on the page's data"
    )
    page = await browser.new_page(viewport={"width": 1280, "height": 600})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto(base)

    # Every backend, with its service, policy, address and state.
    for backend_id in ids:
        await expect(row(page, backend_id)).to_have_attribute("data-state", "serving")
    section = page.locator('section[data-service="compute"]')
    await expect(section.locator(".policy")).to_have_text("least_load")
    search = page.locator('section[data-service="search"]')
    await expect(search.locator(".policy")).to_have_text("round_robin")
    await expect(row(page, "search-1")).to_have_attribute("data-state", "serving")
    address = f"127.0.0.1:{cluster.backends['alpha'].port}"
    await expect(row(page, "alpha").locator("td.address")).to_have_text(address)
    await expect(page.locator("#live")).to_have_attribute("data-live", "live")

    # Traffic: picks per second and the sparkline fill in without a reload.
    with LoadRun(cluster.lb_target, concurrency=8, pause=0.002, limit=100_000) as load:
        await asyncio.to_thread(load.wait_ok, 200)
        await expect(page.locator("#total-pps")).not_to_have_text("0.0", timeout=10_000)
        await expect(row(page, "alpha").locator("svg.spark path.line")).to_have_count(
            1, timeout=10_000
        )

        # A state change (an ejection) shows up without a reload.
        await eject(cluster.lb_target, "bravo")
        await expect(row(page, "bravo")).to_have_attribute("data-state", "ejected", timeout=10_000)
        await expect(row(page, "bravo").locator(".state")).to_have_text("ejected")
        await asyncio.to_thread(load.wait_ok, 100)
        if UPDATE_SCREENSHOT:
            await page.wait_for_timeout(6000)  # a few more samples for the sparklines
        screenshot = README_SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "status-page.png"
        await page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG")

    # A killed backend disappears from the page.
    await asyncio.to_thread(cluster.backends["delta"].kill)
    await asyncio.to_thread(
        wait_until, lambda: "delta" not in backend_ids(base), 15, "delta gone from the LB"
    )
    await expect(row(page, "delta")).to_have_count(0, timeout=10_000)
    await expect(row(page, "alpha")).to_have_count(1)

    # Every asset came from the LB itself: no CDN, nothing off the admin port.
    assert requests
    assert all(url.startswith(base) for url in requests), requests
    assert errors == []


async def test_page_reads_on_a_phone(cluster: Cluster, browser: Browser) -> None:
    base = await start(cluster, "round_robin", {"phone-1"})
    page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    await page.goto(base)
    await expect(row(page, "phone-1")).to_have_attribute("data-state", "serving")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    assert await page.locator("thead").is_hidden()  # rows are cards on narrow screens
