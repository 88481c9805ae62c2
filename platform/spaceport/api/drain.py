"""Read the rest of a request's body before an error answer goes out.

An error (a 405 from the router, a 401 before a push's pack is read, a validation 422)
is often sent while the client is still sending its body. Uvicorn then closes the connection
with unread bytes in the socket, and the kernel answers those bytes with a TCP reset that can
destroy the answer before the peer has read it: the proxy, the peer here, sees the headers and
loses the body, and the client gets a cut response instead of the error that tells it what to
fix (found by the API fuzz test, tests/safety/test_api_fuzz.py). Reading what is left first
(up to `limit` bytes; past that, closing is the lesser evil) lets every error arrive whole.
Successful answers are untouched: a streaming route may answer while it still reads.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT = 8 * 1024**2


class DrainBeforeError:
    def __init__(self, app: ASGIApp, limit: int = DRAIN_LIMIT) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def tracked_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_done = True
            return message

        async def draining_send(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] >= 400
                and not body_done
            ):
                drained = 0
                while not body_done and drained <= self.limit:
                    drained += len((await tracked_receive()).get("body", b""))
            await send(message)

        await self.app(scope, tracked_receive, draining_send)
