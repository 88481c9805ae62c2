"""sdk: static — the repo's files served as they are, with `app_file` as the landing page.

No dependencies, so no dependency stages: the base image's Python serves the files with
`http.server`; a small handler maps `/` to `app_file` when it is not `index.html`.
"""

from __future__ import annotations

import json

from spaceport_builder.packs.base import APP_DIR, BuildPack

# `python -c` program: serve APP_DIR, and answer `/` with the app file (Hugging Face's rule).
SERVER = """\
import functools, http.server, sys
port, landing = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        if path.split('?', 1)[0] in ('', '/'):
            path = '/' + landing
        return super().translate_path(path)
handler = functools.partial(Handler, directory='.')
http.server.ThreadingHTTPServer(('0.0.0.0', port), handler).serve_forever()
"""


class StaticPack(BuildPack):
    sdk = "static"

    def command(self) -> list[str]:
        port = str(self.ctx.config.app_port)
        landing = self.ctx.config.app_file or "index.html"
        return ["python", "-c", SERVER, port, landing]

    def render(self) -> str:
        ctx = self.ctx
        out = [
            f"FROM {ctx.base_image}",
            f"WORKDIR {APP_DIR}",
            f"COPY --chown=1000:1000 . {APP_DIR}",
            f"EXPOSE {ctx.config.app_port}",
            f"CMD {json.dumps(self.command())}",
        ]
        return "\n".join(out) + "\n"
