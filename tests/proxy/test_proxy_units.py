"""Pure logic of the proxy layer: the Caddy config it renders, headers from the README, embed
snippets, per-Space traffic from Caddy's metrics, path-mode URLs and app sign-in tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from spaceport.proxy import Route, SpaceTraffic, app_access, embedding, headers, traffic
from spaceport.proxy.caddy_config import (
    STREAM_CLOSE_DELAY,
    address_table,
    internal_host,
    metrics_hosts,
    parse_routes,
    render_config,
)
from spaceport.settings import Settings


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data=tmp_path, url="http://localhost:8080", listen=":8080", **kw)  # type: ignore[arg-type]


def test_every_kind_of_route_round_trips_through_caddy_json(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    routes = [
        Route("o/a", ("o-a.localhost",), "127.0.0.1:1"),
        Route("o/p", ("o-p.localhost",), "127.0.0.1:2", private=True),
        Route(
            "o/h",
            ("o-h.localhost",),
            "127.0.0.1:3",
            response_headers=headers(embedding.NO_FRAMING),
            request_headers=(("X-Space", "o/h"),),
        ),
        Route("o/g", ("apps.localhost",), "127.0.0.1:4", "/o/g", strip_prefix=True),
        Route("o/s", ("apps.localhost",), "127.0.0.1:5", "/o/s", private=True),
        Route("o/z", ("o-z.localhost",), "172.18.0.9:7860", live=False),
        Route("o/n", ("o-n.localhost",), "app-host:8000"),
    ]
    config = json.loads(json.dumps(render_config(settings, routes)))
    assert parse_routes(config, address_table(routes)) == {r.space_id: r for r in routes}


def test_moving_an_app_changes_only_the_address_table(tmp_path: Path) -> None:
    """What makes deploys, sleeps and wakes reload nothing: the config names each IP upstream
    by its DNS name and port; the address and whether it is live are in the resolver's table."""
    settings = _settings(tmp_path)
    before = Route("o/a", ("o-a.localhost",), "172.18.0.5:7860")
    for moved in (
        Route("o/a", ("o-a.localhost",), "172.18.0.6:7860"),
        Route("o/a", ("o-a.localhost",), "172.18.0.5:7860", live=False),
    ):
        assert render_config(settings, [moved]) == render_config(settings, [before])
        assert address_table([moved]) != address_table([before])
    other_port = Route("o/a", ("o-a.localhost",), "172.18.0.5:8501")
    assert render_config(settings, [other_port]) != render_config(settings, [before])
    app = render_config(settings, [before])["apps"]["http"]["servers"]["spaceport"]["routes"][1]
    dynamic = app["handle"][-1]["dynamic_upstreams"]
    assert dynamic["name"] == internal_host("o/a") + "." and dynamic["port"] == "7860"
    # Read back without its table entry, the route is kept but goes nowhere until the next sync.
    unknown = parse_routes(render_config(settings, [before]), {})["o/a"]
    assert not unknown.live and unknown.upstream.endswith(":7860")


def test_config_shape_streams_metrics_errors_and_private_auth(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    private = Route("o/p", ("o-p.localhost",), "127.0.0.1:2", private=True)
    config = render_config(settings, [private])
    http = config["apps"]["http"]
    server = http["servers"]["spaceport"]
    assert http["metrics"] == {"per_host": True}
    assert config["admin"]["listen"].startswith("unix/")
    assert server["errors"]["routes"], "a dead upstream must reach the status page"
    ids = [r.get("@id") for r in server["routes"]]
    assert ids == ["space:o:p#platform", "space:o:p", "spaceport:api"]
    auth, drop_token, app = server["routes"][1]["handle"]
    assert auth["rewrite"]["uri"] == "/.spaceport/authz"
    assert auth["upstreams"] == [{"dial": settings.api_upstream}]
    assert app["dynamic_upstreams"]["source"] == "a" and "upstreams" not in app
    assert drop_token["handler"] == "subroute"
    assert app["stream_close_delay"] == STREAM_CLOSE_DELAY and app["flush_interval"] == -1
    # The metrics labels Caddy will use: the host as browsers send it, with the port.
    assert server["routes"][1]["match"][0]["host"] == ["o-p.localhost", "o-p.localhost:8080"]


def test_path_mode_routes_move_each_space_onto_its_own_internal_host(tmp_path: Path) -> None:
    settings = _settings(tmp_path, routing="path")
    route = Route("o/g", ("apps.localhost",), "127.0.0.1:4", "/o/g", strip_prefix=True)
    server = render_config(settings, [route])["apps"]["http"]["servers"]["spaceport"]
    platform, entry, app, _ = server["routes"]
    assert platform["match"][0]["path"] == ["/o/g/.spaceport/*"]
    assert entry["match"][0] == {"host": ["apps.localhost"], "path": ["/o/g", "/o/g/*"]}
    assert entry["handle"][1]["request"]["set"]["Host"] == [internal_host("o/g")]
    assert "terminal" not in entry
    assert app["match"][0]["host"] == [internal_host("o/g")]
    assert metrics_hosts(settings, route) == [internal_host("o/g")]


def test_readme_headers_allow_only_cross_origin_isolation(tmp_path: Path) -> None:
    card = {
        "custom_headers": {
            "cross-origin-embedder-policy": "require-corp",
            "Cross-Origin-Opener-Policy": "same-origin",
            "set-cookie": "x=1",
            "cross-origin-resource-policy": "everywhere",
        },
        "disable_embedding": True,
    }
    assert dict(embedding.response_headers(card)) == {
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
    }
    problems = embedding.custom_header_problems(card)
    assert any("'set-cookie' is not allowed" in p for p in problems)
    assert any("'everywhere' must be one of" in p for p in problems)
    assert embedding.response_headers({}) == ()


def test_embed_snippets_per_sdk() -> None:
    g = embedding.snippets("http://o-g.localhost:8080/", "gradio", {})
    assert g["script_url"] == "http://o-g.localhost:8080/.spaceport/gradio.js"
    assert '<gradio-app src="http://o-g.localhost:8080/">' in g["web_component"]
    s = embedding.snippets("http://o-s.localhost:8080/", "streamlit", {})
    assert 'src="http://o-s.localhost:8080/?embed=true"' in s["iframe"]
    assert "web_component" not in s
    off = embedding.snippets("http://o-n.localhost/", "gradio", {"disable_embedding": "true"})
    assert off["embeddable"] is False and "iframe" not in off


def _sample(name: str, value: float, **labels: str) -> str:
    labels.setdefault("server", "spaceport")
    labels.setdefault("handler", "reverse_proxy")
    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{text}}} {value}"


_H = "o-a.localhost:8080"
_DURATION = "caddy_http_request_duration_seconds"
METRICS = "\n".join(
    [
        "# TYPE caddy_http_requests_total counter",
        _sample("caddy_http_requests_total", 7, host=_H),
        _sample("caddy_http_requests_total", 1, host="o-a.localhost"),
        _sample("caddy_http_requests_total", 50, host="_other"),
        _sample("caddy_http_requests_total", 9, host="o-a.localhost", server="other"),
        _sample("caddy_http_requests_in_flight", 1, host=_H),
        _sample(f"{_DURATION}_bucket", 5, host=_H, code="200", method="GET", le="0.005"),
        _sample(f"{_DURATION}_bucket", 6, host=_H, code="200", method="GET", le="+Inf"),
        _sample(f"{_DURATION}_bucket", 0, host=_H, code="502", method="GET", le="0.005"),
        _sample(f"{_DURATION}_bucket", 2, host=_H, code="502", method="GET", le="+Inf"),
        _sample(f"{_DURATION}_sum", 0.25, host=_H, code="200", method="GET"),
        _sample(f"{_DURATION}_count", 6, host=_H, code="200", method="GET"),
        _sample(f"{_DURATION}_count", 2, host=_H, code="502", method="GET"),
    ]
)


def test_caddy_metrics_fold_into_one_series_per_space() -> None:
    hosts = {"o-a.localhost": "o/a", "o-a.localhost:8080": "o/a"}
    t = traffic.per_space(METRICS, hosts, "spaceport")["o/a"]
    assert (t.requests, t.in_flight, t.errors, t.duration_count) == (8, 1, 2, 8)
    assert t.duration_buckets == {"0.005": 5, "+Inf": 8}
    text = traffic.render_prometheus({"o/a": t})
    assert 'spaceport_space_requests_total{space="o/a"} 8' in text
    assert 'spaceport_space_errors_total{space="o/a"} 2' in text
    assert 'spaceport_space_request_duration_seconds_bucket{space="o/a",le="+Inf"} 8' in text
    assert "# TYPE spaceport_space_request_duration_seconds histogram" in text


def test_activity_is_new_requests_or_one_in_flight() -> None:
    now = {
        "o/new": SpaceTraffic(requests=5),
        "o/busy": SpaceTraffic(requests=3),
        "o/idle": SpaceTraffic(requests=3),
        "o/socket": SpaceTraffic(requests=1, in_flight=1),
        "o/restarted": SpaceTraffic(requests=2),
    }
    before = {"o/busy": 2, "o/idle": 3, "o/socket": 1, "o/restarted": 40}
    used, marks = traffic.active_spaces(now, before)
    # o/new had no requests at the last look: its first visitors are use
    assert used == {"o/new", "o/busy", "o/socket", "o/restarted"}
    assert marks["o/new"] == 5
    first, _ = traffic.active_spaces(now, None)  # the first look ever: history, not "now"
    assert first == {"o/socket"}


def test_path_mode_urls_and_app_env(tmp_path: Path) -> None:
    settings = _settings(tmp_path, routing="path")
    assert settings.app_url("o", "n") == "http://apps.localhost:8080/o/n/"
    assert settings.app_host("o", "n") == "apps.localhost"
    custom = _settings(tmp_path, routing="path", apps_url="https://apps.example.org/")
    assert custom.app_url("o", "n") == "https://apps.example.org/o/n/"
    sub = _settings(tmp_path)
    assert sub.app_url("O", "N_1") == "http://o-n-1.localhost:8080/"
    assert sub.app_path("o", "n") == "/"


def test_app_tickets_are_single_host_short_lived_and_checked(tmp_path: Path) -> None:
    settings = _settings(tmp_path, secret_key="k1")
    grant = app_access.Grant("alice", "o-p.localhost", 0, token_id=7)
    cookie = app_access.issue_cookie(settings, grant)
    opened = app_access.cookie_grant(settings, cookie, "o-p.localhost")
    assert opened is not None and (opened.user, opened.token_id) == ("alice", 7)
    assert app_access.cookie_grant(settings, cookie, "o-other.localhost") is None
    assert app_access.cookie_grant(settings, cookie + "x", "o-p.localhost") is None
    ticket = app_access.issue_ticket(settings, "alice", "o-p.localhost", 7)
    assert app_access.cookie_grant(settings, ticket, "o-p.localhost") is None  # not a cookie
    other_key = _settings(tmp_path, secret_key="k2")
    assert app_access.cookie_grant(other_key, cookie, "o-p.localhost") is None
    expired = app_access._seal(
        settings, "cookie", app_access.Grant("alice", "o-p.localhost", time.time() - 1, "", 7)
    )
    assert app_access.cookie_grant(settings, expired, "o-p.localhost") is None
    # A cookie that names no console session (issued before grants carried one): sign in again.
    sessionless = app_access._seal(
        settings, "cookie", app_access.Grant("alice", "o-p.localhost", time.time() + 60)
    )
    assert app_access.cookie_grant(settings, sessionless, "o-p.localhost") is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://o-p.localhost:8080/x", True),
        ("http://localhost:8080/", False),  # the console
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("http://o-p.localhost.evil.example/", False),
    ],
)
def test_sign_in_only_redirects_to_app_urls(tmp_path: Path, url: str, ok: bool) -> None:
    assert app_access.is_app_url(_settings(tmp_path), url) is ok


def test_path_mode_sign_in_accepts_only_the_apps_origin(tmp_path: Path) -> None:
    settings = _settings(tmp_path, routing="path")
    assert app_access.is_app_url(settings, "http://apps.localhost:8080/o/p/")
    assert not app_access.is_app_url(settings, "http://apps.localhost:9999/o/p/")
    assert not app_access.is_app_url(settings, "http://o-p.localhost:8080/")


@pytest.mark.parametrize(
    ("raw", "query", "location"),
    [
        (b"/", b"", "/"),
        (b"/gradio_api/info", b"x=1&y=%2F", "/gradio_api/info?x=1&y=%2F"),
        (b"/a%2Fb%20c", b"", "/a%2Fb%20c"),  # as sent: not decoded
        (b"//evil.example/x", b"", "/evil.example/x"),  # never to another host
        (b"/\\evil.example/x", b"", "/evil.example/x"),
    ],
)
def test_a_held_wake_is_sent_on_to_the_url_it_asked_for_and_no_other_host(
    raw: bytes, query: bytes, location: str
) -> None:
    from starlette.requests import Request

    from spaceport.api.routes.app_status import _same_url

    scope = {
        "type": "http",
        "method": "GET",
        "path": raw.decode(),
        "raw_path": raw,
        "query_string": query,
        "headers": [],
    }
    assert _same_url(Request(scope)) == location
