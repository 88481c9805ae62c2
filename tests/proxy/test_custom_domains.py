"""Custom domains on the shared node: added, verified through the node's own answer, routed to
the app, unique across Spaces, never routed unverified, and no longer routed once removed.

A domain "points here" when /etc/hosts maps it to loopback (hosts_entries): the reconciler's
check (`/.well-known/spaceport-domain` on the node's public port) then reaches this node.
"""

from __future__ import annotations

import httpx

from tests.conftest import EXAMPLES, PUBLIC_PORT, Node, hosts_entries, unique
from tests.runtime.helpers import wait_for

TITLE = "<title>Static Site"


def _via_proxy(domain: str) -> httpx.Response:
    """A visitor's request for `domain`, through the node's public entry point."""
    return httpx.get(
        f"http://127.0.0.1:{PUBLIC_PORT}/", headers={"Host": f"{domain}:{PUBLIC_PORT}"}, timeout=30
    )


def _domains(node: Node, space_id: str) -> dict[str, dict[str, object]]:
    return {d["domain"]: d for d in node.runtime(space_id)["domains"]}


def test_a_custom_domain_is_verified_routed_and_removed(node: Node) -> None:
    space_id = node.create_space(unique("domains"), sdk="static")
    other = node.create_space(unique("domains"), sdk="static")
    assert node.push(EXAMPLES / "static-site", space_id).returncode == 0
    ours, elsewhere = f"{unique('site')}.example.test", f"{unique('lost')}.example.test"
    url = f"/api/v1/spaces/{space_id}/domains"
    with node.api() as api, hosts_entries(ours):  # `ours` points here, `elsewhere` nowhere
        bad = api.post(url, json={"domain": "not a name"})
        assert bad.status_code == 400 and "not a domain name" in bad.json()["error"]
        own = api.post(url, json={"domain": f"x.{node.settings.apps_domain}"})
        assert own.status_code == 400 and "this node's own" in own.json()["error"]
        for domain in (ours, elsewhere):
            added = api.post(url, json={"domain": domain.upper()})
            assert added.status_code == 200, added.text
            assert {"domain": domain, "stage": "PENDING"}.items() <= {
                **next(d for d in added.json() if d["domain"] == domain)
            }.items()
        taken = api.post(f"/api/v1/spaces/{other}/domains", json={"domain": ours})
        assert taken.status_code == 409 and "another Space" in taken.json()["error"]
        node.wait_stage(space_id, {"RUNNING"})

        wait_for(lambda: _domains(node, space_id)[ours]["stage"] == "READY", 60, every=0.5)
        app = wait_for(
            lambda: (r := _via_proxy(ours)).status_code == 200 and TITLE in r.text and r, 30
        )
        assert TITLE in app.text
        lost = wait_for(lambda: _domains(node, space_id)[elsewhere].get("error"), 60, every=0.5)
        assert "does not reach this node" in str(lost)
        assert _domains(node, space_id)[elsewhere]["stage"] == "PENDING"
        assert TITLE not in _via_proxy(elsewhere).text  # unverified: never routed

        # made private: a stranger on the domain gets the 404 page, as on the app host
        assert api.put(f"/api/spaces/{space_id}/settings", json={"private": True}).is_success
        hidden = wait_for(lambda: (r := _via_proxy(ours)).status_code == 404 and r, 30)
        assert TITLE not in hidden.text

        removed = api.delete(f"{url}/{ours}")
        assert removed.status_code == 200 and ours not in {d["domain"] for d in removed.json()}
        assert TITLE not in _via_proxy(ours).text  # at once, not at the next reconciler pass
        assert api.post(f"/api/v1/spaces/{other}/domains", json={"domain": ours}).status_code == 200
