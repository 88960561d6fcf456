"""Screenshot a report as the browser test sees it: ``python -m tests.support.shoot IN OUT``.

Used to refresh ``docs/report.png`` from a ``make demo`` run (``--width 1280``), and
``docs/wallboard.png`` from the wallboard's URL (``IN`` = the URL ``make demo`` prints).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from tests.support.chromium import launch


async def shoot(report_uri: str, out: Path, width: int, height: int) -> list[str]:
    async with launch() as browser:
        page = await browser.new_page(width, height, mobile=width < 600)
        await page.goto(report_uri)
        if report_uri.startswith("http"):  # the wallboard: once its stream is live
            await page.wait_for("document.getElementById('status').textContent === 'live'")
            await page.screenshot(out)
            return page.errors
        charts = await page.evaluate("document.querySelectorAll('.chart').length")
        await page.wait_for(f"document.querySelectorAll('.chart .main-svg').length >= {charts}")
        await page.screenshot(out)
        return page.errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="a report file, or the wallboard's URL")
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    given = str(args.report)
    uri = given if given.startswith("http") else Path(given).absolute().as_uri()
    errors = asyncio.run(shoot(uri, args.out, args.width, args.height))
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
