"""A small TCP proxy for tests: forwards a listening port to an upstream address, and can
add latency (each chunk held ``delay_s`` before it is passed on, order kept) or hang
(``blackhole``: bytes are read and dropped, nothing is answered, as behind a partition
seen from the application). The kernel here has no ``netem``; this stands in for it on
one link. Runs its own event loop on a thread, so a synchronous test can drive it.

    with Proxy(("127.0.0.1", 9092)) as proxy:
        proxy.delay_s = 0.3
        ... connect to proxy.address ...

Transparent (``upstream`` None): the connections come redirected by an iptables DNAT
rule, and each goes on to the address it was meant for (``SO_ORIGINAL_DST``), its own
packets marked ``MARK`` so the rule lets them pass (``TestNet.delay``). As a process:
``python -m tests.support.netproxy --listen ADDR:PORT --delay 0.3 [--upstream H:P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

_CHUNK = 64 * 1024
MARK = 0x7A  # on the transparent proxy's own connections: the DNAT rule skips them
_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
_SO_MARK = 36  # asm-generic/socket.h (the socket module has it from Python 3.12)


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """Where a connection redirected by DNAT was going."""
    raw = sock.getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


class Proxy:
    __test__ = False

    def __init__(
        self, upstream: tuple[str, int] | None, listen: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.upstream = upstream
        self.delay_s = 0.0
        self.blackhole = False
        self.connections = 0  # accepted since start
        self._sock = socket.create_server(listen)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> Proxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        future.result(10)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accepted, sock=self._sock)

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()
        self._sock.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await self._open_upstream(writer)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _open_upstream(
        self, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream is not None:
            return await asyncio.open_connection(*self.upstream)
        destination = original_destination(writer.get_extra_info("socket"))
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_MARK, MARK)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, destination)
        except OSError:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction: chunks in order, each held ``delay_s``, dropped while blackholed."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def send() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    writer.close()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the link's latency, by design
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while True:
                chunk = await reader.read(_CHUNK)
                if chunk and self.blackhole:
                    continue  # vanished on the way
                await queue.put((loop.time() + self.delay_s, chunk))
                if not chunk:
                    break
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netproxy", description=__doc__)
    parser.add_argument("--listen", type=_address, required=True, help="ADDR:PORT")
    parser.add_argument("--upstream", type=_address, help="HOST:PORT; transparent if left out")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each chunk is held")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Proxy(args.upstream, listen=args.listen) as proxy:
        proxy.delay_s = args.delay
        print(f"netproxy on {proxy.address[0]}:{proxy.port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
