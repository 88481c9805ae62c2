"""Protocol app for the proxy tests (stdlib only, starts in milliseconds).

GET /            an HTML page ("Protocol app")
GET /headers     the request headers the app saw, as JSON
GET /sse         text/event-stream: "first" at once, "last" after 2 s, then the end
GET /slow?s=N    answers after N seconds
GET /status/N    answers with HTTP status N
POST /upload     reads the body as it streams (Content-Length or chunked): {bytes, sha256}
GET /ws          websocket: echoes each text message as "echo:<message>"
"""

import base64
import hashlib
import json
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, body, content_type="application/json", code=200):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/ws":
            return self.websocket()
        if url.path == "/sse":
            return self.sse()
        if url.path == "/headers":
            return self.reply(json.dumps({k.lower(): v for k, v in self.headers.items()}))
        if url.path.startswith("/status/"):
            return self.reply("{}", code=int(url.path.rsplit("/", 1)[1]))
        if url.path == "/slow":
            seconds = float(parse_qs(url.query).get("s", ["1"])[0])
            time.sleep(seconds)
            return self.reply(json.dumps({"slept": seconds}))
        page = "<!doctype html><title>Protocol app</title><h1 id='hello'>Protocol app</h1>"
        return self.reply(page, "text/html; charset=utf-8")

    def do_POST(self):
        digest, total = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    digest.update(chunk)
                    total += len(chunk)
                    left -= len(chunk)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
                left -= len(chunk)
        self.reply(json.dumps({"bytes": total, "sha256": digest.hexdigest()}))

    def sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"data: first\n\n")
        self.wfile.flush()
        time.sleep(2)
        self.wfile.write(b"data: last\n\n")
        self.wfile.flush()
        self.close_connection = True

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                break
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:  # close: answer it and stop
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                break
            if opcode == 9:  # ping -> pong
                self.send_frame(0xA, payload)
                continue
            if opcode == 1:
                self.send_frame(0x1, b"echo:" + payload)
        self.close_connection = True

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)
        self.wfile.flush()


if __name__ == "__main__":
    print("protocol app listening on 7860", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 7860), Handler).serve_forever()
