"""Every private part of aiohttp and aiokafka the code relies on, in one list.

A minor release may rename or drop any of them without notice, so pyproject.toml bounds
both libraries below their next minor version. Before raising a bound, run
``tests/unit/test_private_hooks.py`` against the new version: it checks each hook below on
the installed libraries and fails naming the one that is gone.

aiohttp, in ``pipeline/http/guard.py`` (deadlines on each phase of a request, driven by
aiohttp's own protocol, which has no request-read timeout):

- ``RequestHandler._loop``: the loop the connection's deadlines are armed on.
- ``RequestHandler._request_count``: grows when the parser completes a request's headers.
- ``RequestHandler._messages``: the parsed requests; the last one's payload is the body
  whose end moves a connection from BODY to BUSY.
- ``RequestHandler._force_close``: read (the connection is closing) and set (close it).
- ``RequestHandler._waiter``: cancelled to wake aiohttp's request loop when we close.
- ``RequestHandler._request_in_progress``: no handler is running (a timeout may answer).
- ``RequestHandler._upgraded``: an upgraded connection is not kept alive.
- ``RequestHandler._reading_paused``: ``resume_reading`` passes to aiohttp's only when set.
- ``Server._loop`` and ``Server._kwargs``: handed to each ``GuardedProtocol`` as
  aiohttp's own ``Server.__call__`` hands them to a ``RequestHandler``.
- ``BaseRunner._kwargs``: the runner's server arguments, passed to ``GuardedServer``.
- ``BaseRunner._make_server`` and ``BaseRunner._cleanup_server``: overridden to run the
  service's start and stop around the server.

aiokafka, in ``pipeline/sink/kafka.py`` (a record appended to the open batch without
``send``'s per-record lookups: bench/RESULTS.md):

- ``AIOKafkaProducer._message_accumulator``: the producer's batches.
- ``MessageAccumulator._exception`` and ``MessageAccumulator._closed``: when set, the
  fast path steps aside for ``add_message``, which raises.
- ``MessageAccumulator._batches``: the open batches of each partition.
- ``MessageAccumulator.add_message``: a record into a partition's batch, waiting for room.
- ``MessageBatch.append``, with its ``_create_future`` keyword: the future made with the
  running loop's own ``create_future``, with no lookup of the loop per record.

aiokafka, in ``pipeline/sink/codecs.py`` (compression levels aiokafka does not let us set):

- ``default_records.lz4_encode``, ``default_records.gzip_encode`` and
  ``default_records.zstd_encode`` of ``aiokafka.record.default_records`` and of the
  compiled ``aiokafka.record._crecords.default_records``: the names the batch builders
  call, rebound to functions at our level (for lz4, ours: ``codecs.lz4_frame``). The
  compiled module is absent from a pure-Python install; the code then rebinds the
  pure-Python names only.
"""

from __future__ import annotations

from typing import Literal, NamedTuple


class Hook(NamedTuple):
    """One private name: ``owner`` is a module, or a module and a class (``module:Class``).

    ``kind``: ``attribute`` is found on the class or module itself (a slot, a method, a
    module global); ``instance`` is set on each instance; ``parameter`` is a keyword of
    the callable ``owner.name`` whose own name is ``parameter``.
    """

    owner: str
    name: str
    kind: Literal["attribute", "instance", "parameter"] = "attribute"
    parameter: str = ""
    optional: bool = False  # absent on some installs (a pure-Python build)

    @property
    def shown(self) -> str:
        """How the docstring names it: the class or module's last part, then the name."""
        last = self.owner.rpartition(":")[2].rpartition(".")[2]
        return f"{last}.{self.name}"


_HANDLER = "aiohttp.web_protocol:RequestHandler"
_SERVER = "aiohttp.web_server:Server"
_RUNNER = "aiohttp.web_runner:BaseRunner"
_PRODUCER = "aiokafka.producer.producer:AIOKafkaProducer"
_ACCUMULATOR = "aiokafka.producer.message_accumulator:MessageAccumulator"
_BATCH = "aiokafka.producer.message_accumulator:MessageBatch"
_RECORDS = "aiokafka.record.default_records"
_COMPILED_RECORDS = "aiokafka.record._crecords.default_records"

HOOKS: tuple[Hook, ...] = (
    Hook(_HANDLER, "_loop"),
    Hook(_HANDLER, "_request_count"),
    Hook(_HANDLER, "_messages"),
    Hook(_HANDLER, "_force_close"),
    Hook(_HANDLER, "_waiter"),
    Hook(_HANDLER, "_request_in_progress"),
    Hook(_HANDLER, "_upgraded"),
    Hook(_HANDLER, "_reading_paused"),
    Hook(_SERVER, "_loop", "instance"),
    Hook(_SERVER, "_kwargs", "instance"),
    Hook(_RUNNER, "_kwargs"),
    Hook(_RUNNER, "_make_server"),
    Hook(_RUNNER, "_cleanup_server"),
    Hook(_PRODUCER, "_message_accumulator", "instance"),
    Hook(_ACCUMULATOR, "_exception", "instance"),
    Hook(_ACCUMULATOR, "_closed", "instance"),
    Hook(_ACCUMULATOR, "_batches", "instance"),
    Hook(_ACCUMULATOR, "add_message"),
    Hook(_BATCH, "append", "parameter", "_create_future"),
    Hook(_RECORDS, "lz4_encode"),
    Hook(_RECORDS, "gzip_encode"),
    Hook(_RECORDS, "zstd_encode"),
    Hook(_COMPILED_RECORDS, "lz4_encode", optional=True),
    Hook(_COMPILED_RECORDS, "gzip_encode", optional=True),
    Hook(_COMPILED_RECORDS, "zstd_encode", optional=True),
)
