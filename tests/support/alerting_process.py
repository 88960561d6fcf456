"""An alerting process of its own, for the restart tests: ``python -m
tests.support.alerting_process ALERTS_FILE``.

It builds the service as the live command does, then reads one figure per line on
standard input (``{"at": ..., "disconnected": {"inst-7": since-or-null}}``), hands it to
``on_now`` and answers ``judged`` once the listener returned (the state is written by
then). It stands for the live process until that one exists, so a test can kill it with
SIGKILL at a known point and start another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from pipeline.live.alerts.service import build_alerts
from tests.support.tenant_now import figures


async def main(path: str) -> None:
    service = build_alerts(path, time_zone="America/Sao_Paulo")
    assert service is not None
    service.start()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        given = json.loads(line)
        await service.on_now(figures(given["at"], disconnected=given["disconnected"]))
        print("judged", flush=True)
    await service.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(sys.argv[1]))
