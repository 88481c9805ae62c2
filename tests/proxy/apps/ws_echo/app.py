"""Echo every websocket message back unchanged (text as text, binary as binary).

As websockets' own Autobahn server: no size limit below the suite's 16 MiB messages,
permessage-deflate on. A plain HTTP request (the platform's readiness check, a visitor) gets
200 "ok".
"""

import asyncio
from http import HTTPStatus

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def plain_http(connection, request):
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def main():
    async with serve(echo, "0.0.0.0", 7860, max_size=2**25, process_request=plain_http) as server:
        await server.serve_forever()


asyncio.run(main())
