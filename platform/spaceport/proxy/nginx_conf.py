"""nginx's config for Spaceport: fixed per node, never per Space (pure function, testable).

Every Space lives in the route table that `spaceport.lua` keeps in shared memory and the
control plane replaces over the admin socket; so this file changes only with the node's
settings (listen address, API address, paths) and a routing change never reloads nginx.

One public server answers everything, the way Caddy's one server did:
- a Space's host (or, in path mode, the apps host and the Space's prefix) reaches its app
  through the `spaceport_app` pool, whose peer the Lua balancer picks per request from the
  table (upstream keep-alive per address);
- private Spaces ask the control plane first (`/_spaceport/authz`, an internal subrequest);
- everything else, the status pages of Spaces that are not live and the platform paths under
  each app's URL (`/.spaceport/...`), reaches the control plane (`spaceport_api`);
- a dial that fails (container gone) becomes the status page (`@status`), never a bare 502.
Bodies stream both ways unbuffered (uploads, server-sent events, streamed responses),
websockets pass through, and a request may take an hour (long inference).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from spaceport.proxy.base import AUTHZ_PATH
from spaceport.settings import Settings

LUA_DIR = Path(__file__).parent / "nginx_data"
DOMAIN_VERIFY_PATH = "/.well-known/spaceport-domain"
"""Where a custom domain is asked whether it reaches this node (services/domains.py)."""
ROUTES_FILE = "nginx-routes.json"
LONG_TIMEOUT = "86400s"
"""How long a request may go without a byte: inference of several minutes, a Streamlit tab
left open overnight (its websocket is idle between reruns). Caddy has no such limit."""


def listen_directives(listen: str, extra: str = "") -> list[str]:
    """`:8080` is every address, IPv6 and IPv4 on one socket; `host:port` only that one.
    `extra`: more listen parameters (`ssl http2`)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    opts = f"{extra} backlog=4096 default_server" if extra else "backlog=4096 default_server"
    if host in ("", "*", "::", "0.0.0.0"):
        return [f"listen [::]:{port} ipv6only=off {opts};"]
    if ":" in host:
        return [f"listen [{host}]:{port} {opts};"]
    return [f"listen {host}:{port} {opts};"]


def _tls_directives(settings: Settings, lua: str, placeholder: tuple[Path, Path] | None) -> str:
    """The public server's TLS: each handshake's certificate comes from the table in shared
    memory (`spaceport.lua`, pushed by proxy/tls.py); the config's own is a placeholder for
    the moments before the first push. HTTP/2 is offered by ALPN."""
    if placeholder is None:
        return ""
    cert, key = placeholder
    age = settings.hsts_max_age_s
    hsts = f'\n        add_header Strict-Transport-Security "max-age={age}" always;' if age else ""
    return f"""ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_certificate_by_lua_block {{ {lua}.certificate() }}
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:spaceport_tls:16m;
        ssl_session_timeout 1d;{hsts}"""


def _redirect_server(settings: Settings, lua: str) -> str:
    """Plain HTTP beside HTTPS: ACME HTTP-01 answers (tokens in shared memory, put there by
    the control plane while an order waits), and a redirect to HTTPS for everything else, but
    for a routed host (or the console) with no certificate yet: a page that says it is being
    issued, and retries (`plain_http` in spaceport.lua)."""
    port = settings.public_port
    suffix = f":{port}" if port not in (None, 443) else ""
    console = (urlparse(settings.url).hostname or "").lower()
    listen = "\n        ".join(listen_directives(settings.http_listen))
    return f"""
    server {{
        {listen}
        server_name _;
        location /.well-known/acme-challenge/ {{
            content_by_lua_block {{ {lua}.acme_challenge() }}
        }}
        location = {DOMAIN_VERIFY_PATH} {{
            proxy_pass http://spaceport_api;  # a custom domain's check (services/domains.py)
            proxy_set_header Host $host;
            proxy_set_header Connection "";
            proxy_http_version 1.1;
        }}
        location / {{  # HTTPS, or a page while the host's first certificate is issued
            content_by_lua_block {{ {lua}.plain_http("{suffix}", "{console}") }}
        }}
    }}
"""


def public_scheme(settings: Settings) -> str:
    """The scheme visitors use: SPACEPORT_URL's. nginx itself speaks plain HTTP; with TLS
    ended in front of it (a load balancer), apps must still build `https://` links, or the
    browser blocks them as mixed content."""
    scheme = settings.url.split("://", 1)[0].lower()
    return scheme if scheme in ("http", "https") else "http"


def _proxy_common(scheme: str, host: str = "$http_host") -> str:
    return f"""proxy_http_version 1.1;
            proxy_set_header Host {host};
            proxy_set_header X-Forwarded-Host {host};
            proxy_set_header X-Forwarded-Proto {scheme};
            proxy_set_header X-Forwarded-For $remote_addr;"""


def render(
    settings: Settings,
    *,
    modules_dir: Path | None,
    user: str | None,
    workers: str = "auto",
    daemon: bool = True,
    pidfile: Path | None = None,
    placeholder: tuple[Path, Path] | None = None,
) -> str:
    """The whole nginx.conf. `modules_dir` holds Debian's dynamic Lua modules (None when the
    binary has them built in); `user` is set when nginx starts as root; `daemon` off for a
    service manager (compose) that wants the master in the foreground, with a `pidfile` of its
    own: the node's `nginx.pid` means "Spaceport started it and starts it again". With an
    https URL, `placeholder` is the certificate/key nginx's config names (tls_store.py)."""
    run, logs = settings.run_dir, settings.logs_dir
    modules = (
        f"load_module {modules_dir}/ndk_http_module.so;\n"
        f"load_module {modules_dir}/ngx_http_lua_module.so;\n"
        if modules_dir
        else ""
    )
    tls = settings.https and placeholder is not None
    listen = "\n        ".join(listen_directives(settings.listen, "ssl http2" if tls else ""))
    common = _proxy_common(public_scheme(settings))
    lua = 'require("spaceport")'
    api_host, _, api_port = settings.api_upstream.rpartition(":")
    init = (
        f'{lua}.init("{run / ROUTES_FILE}", "{api_host}", "{api_port}", "{AUTHZ_PATH}", '
        f'"{public_scheme(settings)}")'
    )
    temp = "\n    ".join(
        f"{kind}_temp_path {run}/nginx-temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by Spaceport (proxy/nginx_conf.py) at every start; edits are lost.
{modules}{f"user {user};" if user else ""}
worker_processes {workers};
pid {pidfile or run / "nginx.pid"};
error_log {logs}/nginx.log warn;
daemon {"on" if daemon else "off"};

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    server_tokens off;
    lua_package_path "{LUA_DIR}/?.lua;;";
    lua_shared_dict spaceport_routes 32m;
    lua_shared_dict spaceport_traffic 16m;
    lua_shared_dict spaceport_certs 32m;
    init_by_lua_block {{ {init} }}
    {temp}

    # What any proxy owes the apps behind it: bodies unbuffered both ways and of any size,
    # long requests, websockets (Connection "upgrade" only when asked, else keep-alive).
    client_max_body_size 0;
    client_body_buffer_size 1m;
    large_client_header_buffers 4 32k;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout {LONG_TIMEOUT};
    proxy_send_timeout {LONG_TIMEOUT};
    proxy_connect_timeout 5s;
    proxy_next_upstream off;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    send_timeout {LONG_TIMEOUT};
    map $http_upgrade $sp_connection {{
        default upgrade;
        "" "";
    }}

    upstream spaceport_app {{
        server 0.0.0.1:1;  # a placeholder: the Lua balancer names each request's app
        balancer_by_lua_block {{ {lua}.balance() }}
        keepalive 1024;
        keepalive_requests 100000;
        keepalive_timeout 60s;
    }}
    upstream spaceport_api {{
        server {settings.api_upstream};
        keepalive 64;
    }}

    server {{
        {listen}
        server_name _;
        {_tls_directives(settings, lua, placeholder if tls else None)}

        location / {{
            set $sp_pool spaceport_api;
            set $sp_uri $request_uri;
            set $sp_space "";
            set $sp_authz_space "";  # set for the authz subrequest (it shares these)
            set $sp_authz_method "";
            set $sp_authz_uri "";
            access_by_lua_block {{ {lua}.access() }}
            header_filter_by_lua_block {{ {lua}.header_filter() }}
            log_by_lua_block {{ {lua}.log() }}
            proxy_pass http://$sp_pool$sp_uri;
            {common}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $sp_connection;
            error_page 502 504 = @status;
        }}

        location @status {{
            log_by_lua_block {{ {lua}.log() }}
            proxy_pass http://spaceport_api;
            {common}
            proxy_set_header Connection "";
            proxy_set_header X-Spaceport-Proxy-Error 502;
        }}

        location = /_spaceport/authz {{
            internal;
            proxy_pass http://spaceport_api{AUTHZ_PATH};
            proxy_pass_request_body off;
            {common}
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header X-Spaceport-Space $sp_authz_space;
            proxy_set_header X-Forwarded-Method $sp_authz_method;
            proxy_set_header X-Forwarded-Uri $sp_authz_uri;
        }}
    }}
{_redirect_server(settings, lua) if tls else ""}
    server {{
        listen unix:{settings.nginx_admin_socket};
        location = /routes {{ content_by_lua_block {{ {lua}.admin_routes() }} }}
        location = /certs {{ content_by_lua_block {{ {lua}.admin_certs() }} }}
        location /challenges/ {{ content_by_lua_block {{ {lua}.admin_challenges() }} }}
        location = /traffic {{ content_by_lua_block {{ {lua}.admin_traffic() }} }}
        location = /health {{ content_by_lua_block {{ {lua}.admin_health("{settings.listen}") }} }}
        location / {{ return 404; }}
    }}
}}
"""
