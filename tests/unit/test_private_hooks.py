"""The private parts of aiohttp and aiokafka we use still exist in the installed versions."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import MessageAccumulator

from pipeline.runtime import private_hooks
from pipeline.runtime.private_hooks import HOOKS, Hook


def _owner(hook: Hook) -> Any:
    module_name, _, class_name = hook.owner.partition(":")
    owner: Any = importlib.import_module(module_name)
    return getattr(owner, class_name) if class_name else owner


async def _handle(request: web.BaseRequest) -> web.StreamResponse:
    raise AssertionError("never called: the server is built, not served")


@pytest.fixture
async def instances() -> AsyncIterator[dict[str, Any]]:
    """One instance of each class whose instance attributes are hooks; no connection made."""
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    made: dict[str, Callable[[], Any]] = {
        "aiohttp.web_server:Server": lambda: web.Server(_handle),
        "aiokafka.producer.producer:AIOKafkaProducer": lambda: producer,
        "aiokafka.producer.message_accumulator:MessageAccumulator": lambda: MessageAccumulator(
            None, 16384, 0, 30
        ),
    }
    try:
        yield {owner: make() for owner, make in made.items()}
    finally:
        await producer.stop()


def _missing(hook: Hook, instances: dict[str, Any]) -> str | None:
    """What is gone, said in a few words; None if the hook is there."""
    try:
        owner = _owner(hook)
    except ImportError:
        return None if hook.optional else f"{hook.owner} cannot be imported"
    except AttributeError:
        return f"{hook.owner} is gone"
    if hook.kind == "instance":
        target = instances[hook.owner]
        return None if hasattr(target, hook.name) else f"{hook.shown} is gone"
    if not hasattr(owner, hook.name):
        return f"{hook.shown} is gone"
    if hook.kind == "parameter":
        parameters = inspect.signature(getattr(owner, hook.name)).parameters
        if hook.parameter not in parameters:
            return f"{hook.shown} takes no {hook.parameter}"
    return None


async def test_every_private_hook_exists_in_the_installed_libraries(
    instances: dict[str, Any],
) -> None:
    gone = [f"{h.owner} {what}" for h in HOOKS if (what := _missing(h, instances))]
    assert gone == [], "private hooks gone: " + "; ".join(gone)


async def test_a_hook_that_is_gone_is_named(instances: dict[str, Any]) -> None:
    renamed = Hook("aiohttp.web_protocol:RequestHandler", "_force_closed")
    assert _missing(renamed, instances) == "RequestHandler._force_closed is gone"
    keyword = Hook("aiokafka.producer.message_accumulator:MessageBatch", "append", "parameter",
                   "_make_future")  # fmt: skip
    assert _missing(keyword, instances) == "MessageBatch.append takes no _make_future"
    module = Hook("aiokafka.record._nowhere", "lz4_encode")
    assert _missing(module, instances) == "aiokafka.record._nowhere cannot be imported"
    assert _missing(module._replace(optional=True), instances) is None


def test_the_docstring_names_every_hook() -> None:
    doc = private_hooks.__doc__ or ""
    assert [h.shown for h in HOOKS if h.shown not in doc] == []
    keywords = [h.parameter for h in HOOKS if h.kind == "parameter"]
    assert [k for k in keywords if f"``{k}``" not in doc] == []
