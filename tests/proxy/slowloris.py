"""Slowloris as a process of its own: `python -m tests.proxy.slowloris PORT HOST COUNT`.

Opens COUNT connections to 127.0.0.1:PORT, each sending a request line and one header, then a
header line every 5 s, never finishing the request. Prints `connected N` once all are open and
holds them until its stdin closes. A process apart from the test's, so its thousand sockets
never hold up the client measuring the visitors (the same interpreter's lock did in CI).
"""

from __future__ import annotations

import asyncio
import sys


async def slow_client(port: int, host: str, opened: list[int]) -> None:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
        await writer.drain()
        opened.append(1)
        while True:
            await asyncio.sleep(5)
            writer.write(b"X-a: b\r\n")
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main(port: int, host: str, count: int) -> None:
    opened: list[int] = []
    clients = [asyncio.create_task(slow_client(port, host, opened)) for _ in range(count)]
    await asyncio.sleep(1)
    while len(opened) < count and not all(c.done() for c in clients):
        await asyncio.sleep(0.1)
    print(f"connected {len(opened)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    for c in clients:
        c.cancel()
    await asyncio.gather(*clients, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
