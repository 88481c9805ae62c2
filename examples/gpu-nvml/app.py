"""GET / -> the GPUs this container sees through NVML, or the NVML error saying why none."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pynvml


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpus() -> dict[str, object]:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"gpus": [], "error": f"NVML: {exc}"}
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append(
                {
                    "index": i,
                    "name": text(pynvml.nvmlDeviceGetName(handle)),
                    "uuid": text(pynvml.nvmlDeviceGetUUID(handle)),
                    "memory_total_mib": memory.total // 2**20,
                }
            )
        driver = text(pynvml.nvmlSystemGetDriverVersion())
        return {"gpus": found, "driver": driver}
    finally:
        pynvml.nvmlShutdown()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({**gpus(), "space": os.environ.get("SPACE_ID", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "7860"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
