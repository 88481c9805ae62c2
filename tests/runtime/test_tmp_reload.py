import asyncio, threading, time, httpx
from tests.conftest import Node

def test_reload(node: Node) -> None:
    from spaceport.proxy import make_proxy
    from spaceport.proxy.base import Route
    errors, ok = [], [0]
    done = threading.Event()
    def poll():
        while not done.is_set():
            try:
                httpx.get(f"{node.url}/api/v1/health", timeout=10)
                ok[0] += 1
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
    ts = [threading.Thread(target=poll) for _ in range(2)]
    for t in ts: t.start()
    proxy = make_proxy(node.settings)
    for i in range(40):
        routes = [Route(space_id=f"x/y{i}", hosts=(f"x-y{i}.localhost",), upstream="127.0.0.1:9")]
        asyncio.run(proxy.set_routes(routes))
        time.sleep(0.05)
    done.set()
    for t in ts: t.join()
    print("OK", ok[0], "ERR", len(errors), errors[:3])
