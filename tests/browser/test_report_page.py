"""The HTML report in a real browser: headless Chromium (Debian's), phone and desktop.

The report of the hand-computed fixture centre (``tests/support/kpi_fixtures``) is
opened from disk; each page must draw every chart, log no script error, load nothing
from the network, fit a phone's width, and screenshot as something other than a blank
page. The numbers a person reads on it are compared with ``kpi_daily``, queried
separately.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pipeline.report.command import write_report
from pipeline.report.model import Filters
from pipeline.report.numbers import NumberFormat
from pipeline.report.source import open_source
from tests.support import kpi_fixtures as fx
from tests.support.chromium import Page, launch

PHONE = (390, 844)
DESKTOP = (1280, 900)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = str(tmp_path_factory.mktemp("browser") / "plug.duckdb")
    fx.load(where)
    return where


def _not_blank(png: bytes) -> tuple[float, int]:
    """The share of pixels that differ from the page background, and how many colours."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    background = image.getpixel((2, image.height - 2))
    histogram = image.getcolors(maxcolors=1 << 24) or []
    same = next((n for n, colour in histogram if colour == background), 0)
    return 1 - same / (image.width * image.height), len(histogram)


async def _open(page: Page, path: Path) -> None:
    await page.goto(path.as_uri())  # tmp_path is absolute
    charts = await page.evaluate("document.querySelectorAll('.chart').length")
    assert charts > 0
    # plotly draws into each chart's div: wait for every one to hold its SVG
    await page.wait_for(
        f"document.querySelectorAll('.chart .main-svg').length >= {charts}", timeout_s=60
    )


def _kpi(where: str, sql: str) -> float:
    with open_source(where) as source:
        return float(source.rows(sql)[0]["v"])


async def test_report_renders_and_shows_kpi_daily(warehouse: str, tmp_path: Path) -> None:
    en = write_report(warehouse, tmp_path / "en.html", Filters(), NumberFormat("en"))
    acme = write_report(
        warehouse, tmp_path / "acme.html", Filters(tenant="acme"), NumberFormat("pt-BR")
    )
    finished = _kpi(warehouse, "SELECT sum(attendances_finished) AS v FROM kpi_daily")
    day_sla = _kpi(
        warehouse,
        "SELECT 100.0 * sum(sla_met) / sum(sla_eligible) AS v FROM kpi_daily "
        f"WHERE tenant = 'acme' AND day = DATE '{fx.DAY1.isoformat()}'",
    )
    async with launch() as browser:
        for name, (width, height), mobile in (("phone", PHONE, True), ("desktop", DESKTOP, False)):
            page = await browser.new_page(width, height, mobile)
            await _open(page, en)
            shown = await page.evaluate(
                "document.querySelector('[data-figure=attendances_finished]').textContent"
            )
            assert int(shown.replace(",", "")) == finished == 6
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            png = await page.screenshot(tmp_path / f"report-{name}.png")
            share, colours = _not_blank(png)
            assert share > 0.05, (name, share)
            assert colours > 50, (name, colours)
            assert page.errors == [], page.errors
            assert all(u.startswith(("file:", "data:", "about:")) for u in page.requests)

        # pt-BR: the SLA of acme's first day in the daily table, "66,7%", is kpi_daily's
        page = await browser.new_page(*DESKTOP)
        await _open(page, acme)
        cell = await page.evaluate(
            f'document.querySelector(\'tr[data-day="{fx.DAY1.isoformat()}"] '
            "[data-figure=sla_pct]').textContent"
        )
        assert cell == "66,7%"
        assert float(cell.rstrip("%").replace(",", ".")) == pytest.approx(day_sla, abs=0.05)
        assert page.errors == [], page.errors
    print(f"screenshots in {tmp_path}")


async def test_a_report_without_data_renders_cleanly(warehouse: str, tmp_path: Path) -> None:
    empty = write_report(
        warehouse, tmp_path / "none.html", Filters(tenant="nobody"), NumberFormat()
    )
    async with launch() as browser:
        page = await browser.new_page(*PHONE, mobile=True)
        await page.goto(empty.as_uri())
        texts = await page.evaluate(
            "Array.from(document.querySelectorAll('.empty')).map(e => e.textContent)"
        )
        assert "No attendances in this period." in texts
        assert (
            await page.evaluate("document.querySelector('[data-figure=sla_pct]').textContent")
            == "—"
        )
        share, _ = _not_blank(await page.screenshot(tmp_path / "empty.png"))
        assert share > 0.02
        assert page.errors == [], page.errors
