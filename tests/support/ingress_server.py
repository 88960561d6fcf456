"""aiohttp's test server around the runner ``plug-pipeline serve`` listens with.

Tests of the HTTP layer go through the production path whole: ``serve.runner_for``
(the guarded low-level server, the ingress's dispatch, the sink's lifecycle), not a
test-only application.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import BaseTestServer

from pipeline.app import Ingress
from pipeline.serve import runner_for


class IngressServer(BaseTestServer):
    def __init__(self, ingress: Ingress, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ingress = ingress

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        # aiohttp's own test options (handler_cancellation) are left out on purpose:
        # what runs is what serve runs
        return runner_for(self.ingress)
