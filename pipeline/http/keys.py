"""Typed application state keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from pipeline.config import Config
from pipeline.sink.base import Sink


@dataclass
class State:
    in_flight: int = 0
    in_flight_bytes: int = 0
    stopping: bool = False


CONFIG = web.AppKey("config", Config)
SINK = web.AppKey("sink", Sink)
STATE = web.AppKey("state", State)
