"""Run Spaces on one Docker Engine through the docker SDK.

Every app container is locked down the same way: uid 1000, all capabilities dropped,
no-new-privileges, memory/CPU/pids limits, a port published on 127.0.0.1 only, and a network
of its own where apps cannot talk to each other.
"""

from __future__ import annotations

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from spaceport.runtime.base import (
    LABEL_DEPLOYMENT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_SPACE,
    ContainerSpec,
    ContainerState,
    RuntimeBackend,
    RuntimeBackendError,
)
from spaceport.settings import Settings


class DockerBackend(RuntimeBackend):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.client = docker.from_env(timeout=120)
        except docker.errors.DockerException as exc:
            raise RuntimeBackendError(
                f"cannot reach the Docker engine ({exc}); start dockerd or set DOCKER_HOST"
            ) from exc

    def ensure_network(self) -> str:
        name = self.settings.app_network
        try:
            self.client.networks.get(name)
        except NotFound:
            self.client.networks.create(
                name,
                driver="bridge",
                labels={LABEL_MANAGED: "true"},
                options={"com.docker.network.bridge.enable_icc": "false"},
            )
        return name

    def start(self, spec: ContainerSpec) -> ContainerState:
        network = self.ensure_network()
        labels = {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self.settings.instance,
            LABEL_SPACE: spec.space_id,
            LABEL_DEPLOYMENT: str(spec.deployment_id),
            **spec.labels,
        }
        volumes = {spec.data_volume: {"bind": "/data", "mode": "rw"}} if spec.data_volume else {}
        try:
            container = self.client.containers.run(
                spec.image,
                name=spec.name,
                detach=True,
                user="1000:1000",
                environment=spec.env,
                labels=labels,
                ports={f"{spec.port}/tcp": ("127.0.0.1", None)},
                network=network,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                nano_cpus=int(spec.cpus * 1e9),
                mem_limit=spec.memory_bytes,
                memswap_limit=spec.memory_bytes,
                pids_limit=spec.pids,
                volumes=volumes,
                init=False,
                log_config={"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}},
            )
        except (APIError, ImageNotFound) as exc:
            raise RuntimeBackendError(f"could not start {spec.image}: {exc}") from exc
        container.reload()
        return self._state(container)

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            container = self.client.containers.get(container_id)
        except NotFound:
            return None
        return self._state(container)

    def restart(self, container_id: str) -> ContainerState:
        container = self.client.containers.get(container_id)
        container.start()
        container.reload()
        return self._state(container)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        try:
            container = self.client.containers.get(container_id)
            if timeout > 0 and container.status == "running":
                container.stop(timeout=timeout)
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 404 and "removal" not in str(exc):
                raise

    def logs(self, container_id: str, tail: int = 50) -> str:
        try:
            raw = self.client.containers.get(container_id).logs(tail=tail)
        except NotFound:
            return ""
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def list(self, space_id: str | None = None) -> list[ContainerState]:
        labels = [f"{LABEL_INSTANCE}={self.settings.instance}"]
        if space_id:
            labels.append(f"{LABEL_SPACE}={space_id}")
        filters = {"label": labels}
        return [self._state(c) for c in self.client.containers.list(all=True, filters=filters)]

    def remove_image(self, image: str) -> None:
        try:
            self.client.images.remove(image, force=False, noprune=False)
        except (ImageNotFound, NotFound):
            pass
        except APIError:
            pass  # still used by a running container: the next cleanup gets it

    @staticmethod
    def _state(container: Container) -> ContainerState:
        attrs = container.attrs
        state = attrs.get("State", {})
        upstream = None
        for bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
            for b in bindings or []:
                if b.get("HostIp") in ("127.0.0.1", "0.0.0.0", ""):
                    upstream = f"127.0.0.1:{b['HostPort']}"
                    break
        return ContainerState(
            id=container.id or "",
            name=container.name or "",
            running=bool(state.get("Running")),
            status=str(state.get("Status", "unknown")),
            exit_code=state.get("ExitCode"),
            upstream=upstream,
            labels=dict(attrs.get("Config", {}).get("Labels") or {}),
        )
