"""Settings: one typed object, read from `SPACEPORT_*` env vars and an optional TOML/YAML file.

Every component (API, worker, CLI, tests) reads its configuration here so that a value has
exactly one name and one default. Defaults are the embedded single-machine setup of `make up`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_DATA_SIZES = {
    "small": ByteSize(20 * 1000**3),
    "medium": ByteSize(150 * 1000**3),
    "large": ByteSize(1000**4),
}
"""/data per storage tier, as Hugging Face sells them."""


def _default_ca_bundle() -> Path | None:
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.exists() else None


class FlavorConfig(BaseModel):
    """An operator's hardware flavor (key `flavors` in the config file)."""

    cpus: float
    memory: str
    gpus: int = 0
    gpu_kind: str | None = None
    pids: int = 2048
    # The OCI runtime of this flavor's apps (e.g. `runsc`), over the node's `app_runtime`:
    # gVisor for the CPU flavors strangers get, runc for GPU flavors gVisor cannot serve.
    runtime: str | None = None
    # A shared GPU flavor (like Hugging Face's `zero-a10g`): calls borrow the node's pool.
    shared_gpu: bool = False


class QuotaConfig(BaseModel):
    """Limits of one namespace (a user or an organization); None is unlimited. The names are
    those of `spaceport quota set` and `PUT /api/v1/quotas/{namespace}`."""

    model_config = ConfigDict(extra="forbid")

    spaces: int | None = Field(default=None, ge=0, description="Spaces it owns.")
    cpu: float | None = Field(default=None, ge=0, description="CPUs of its awake Spaces.")
    memory_gb: float | None = Field(
        default=None, ge=0, description="Memory (GB) of its awake Spaces."
    )
    gpus: int | None = Field(default=None, ge=0, description="GPUs its Spaces hold.")
    storage_gb: float | None = Field(
        default=None, ge=0, description="Storage (GB): /data tiers and git repositories."
    )
    builds_per_hour: int | None = Field(
        default=None, ge=0, description="Builds started in the last hour."
    )


class GpuConfig(BaseModel):
    """One GPU of this node, as listed in config (key `gpus`) instead of discovered by NVML.

    `device` is the host's device node; in `devices` mode it appears in the container as
    `/dev/nvidia{index}`.
    """

    index: int
    uuid: str
    name: str = "GPU"
    device: str | None = None


class Settings(BaseSettings):
    """The whole configuration of a Spaceport node.

    A config file can be given with `SPACEPORT_CONFIG=/path/spaceport.yaml`; env vars win over it.
    """

    model_config = SettingsConfigDict(env_prefix="SPACEPORT_", extra="ignore")

    # Where state lives.
    data: Path = Field(default=Path(".spaceport"), description="Data dir: db, repos, logs, keys.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir."
    )
    redis_url: str = "redis://127.0.0.1:6379/0"

    # The public entry point (the proxy) and the internal API port behind it.
    url: str = Field(default="http://localhost:8080", description="Public URL of the console/API.")
    listen: str = Field(default=":8080", description="The proxy's listen address for all traffic.")
    api_host: str = "127.0.0.1"
    api_port: int = 8081
    resolver_port: int | None = Field(
        default=None,
        description="UDP port (on api_host) of the resolver that tells Caddy where each app "
        "runs; default: the API's port number.",
    )
    apps_domain: str = "localhost"
    routing: Literal["subdomain", "path"] = Field(
        default="subdomain",
        description="subdomain: apps at {owner}-{name}.{apps_domain}; path: apps at "
        "{apps_url}/{owner}/{name}/ (sites without wildcard DNS).",
    )
    apps_url: str | None = Field(
        default=None,
        description="Path mode: the apps' own origin, never the console's; "
        "default http://apps.{apps_domain}[:port].",
    )
    proxy: Literal["nginx", "caddy"] = Field(
        default="nginx",
        description="The proxy apps are reached through: nginx with its Lua module (route "
        "table in shared memory; about 3x Caddy's requests per second here, docs/benchmarks.md) or "
        "caddy (admin API, app addresses from the resolver).",
    )
    runtime: Literal["docker", "swarm"] = Field(
        default="docker",
        description="Where apps run: `docker`, this machine's Docker engine; `swarm`, a Docker "
        "Swarm cluster (each Space a service; images pulled from `registry`; "
        'docs/operations.md, "Several machines").',
    )
    swarm_managers: list[str] = Field(
        default_factory=list,
        description="Cluster mode: the engine API URLs of Swarm managers, tried in order "
        "(e.g. `unix:///run/spaceport-cluster/node1.sock`, `tcp://10.0.0.2:2376`); empty: "
        "DOCKER_HOST. Each node's own engine is found through its node label "
        "`org.spaceport.engine`.",
    )
    registry: str | None = Field(
        default=None,
        description="Cluster mode: the registry every build is pushed to and every node pulls "
        "from (`host:port`).",
    )
    registry_push: str | None = Field(
        default=None,
        description="Cluster mode: where the build engine pushes, when it reaches the same "
        "registry by another address (the dev cluster's loopback); default: `registry`.",
    )
    node_helper_image: str = Field(
        default="spaceport/node-helper:1",
        description="Cluster mode: the image (in `registry`) of the one-shot helper that does "
        "root work on a node, such as compressing an idle Space's memory there; `spaceport up` "
        "publishes the base image under this name. Any image with python3 does.",
    )
    git_url: str | None = Field(
        default=None,
        description="Build workers on other machines (`spaceport worker --builds-only`): the "
        "control plane's address as they reach it, where they fetch repositories over git HTTP "
        "with `SPACEPORT_ADMIN_TOKEN`; default: `SPACEPORT_URL`.",
    )
    swarm_reservation: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Cluster mode: the share of a flavor's CPU and memory limits a Space "
        "reserves on its node (Swarm places Spaces by reservations; 1 reserves the whole "
        "flavor, as dedicated hardware does).",
    )
    # HTTPS (SPACEPORT_URL=https://...; nginx only; docs/operations.md, "HTTPS").
    tls_termination: Literal["nginx", "front"] = Field(
        default="nginx",
        description="With an https URL: `nginx` ends TLS itself (HTTP/2, certificates from "
        "ACME or `tls_cert_file`); `front`: a load balancer in front ends it and nginx "
        "speaks plain HTTP (it still tells apps `X-Forwarded-Proto: https`).",
    )
    http_listen: str = Field(
        default=":80",
        description="With an https URL: the plain HTTP address, which answers ACME HTTP-01 "
        "challenges and redirects everything else to HTTPS.",
    )
    hsts_max_age_s: int = Field(
        default=0,
        ge=0,
        description="With an https URL: Strict-Transport-Security max-age in seconds on every "
        "HTTPS answer; 0 sends none (turn it on once HTTPS works: browsers remember it).",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="An operator's own certificate chain (PEM), e.g. a wildcard for the apps "
        "domain; it wins over ACME for every name it covers.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="The private key (PEM) of `tls_cert_file`."
    )
    acme_directory: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        description="The ACME CA's directory URL that certificates are ordered from; empty: "
        "order none (`tls_cert_file` serves every name).",
    )
    acme_email: str | None = Field(
        default=None, description="Contact address given to the ACME CA (expiry notices)."
    )
    acme_ca_bundle: Path | None = Field(
        default=None,
        description="CA bundle the ACME directory's own HTTPS is verified against (a private "
        "or test CA such as pebble); default: the system's.",
    )
    acme_orders_per_pass: int = Field(
        default=3,
        ge=0,
        description="At most this many certificate orders per reconciler pass (new Space hosts "
        "and renewals queue behind); a host whose order failed waits `acme_retry_s`.",
    )
    acme_retry_s: int = Field(
        default=600, ge=0, description="How long a host whose ACME order failed waits."
    )
    domain_dns_servers: list[str] = Field(
        default_factory=list,
        description="Custom domains: the nameservers (`ip` or `ip:port`) asked for a domain's "
        "TXT record `_spaceport-challenge.<domain>`, its owner's other way to prove control; "
        "empty: the system's (/etc/resolv.conf).",
    )
    caddy_bin: str | None = Field(default=None, description="caddy binary; default: the venv's.")
    nginx_bin: str | None = Field(default=None, description="nginx binary; default: on PATH.")
    nginx_modules_dir: str = Field(
        default="/usr/lib/nginx/modules",
        description="Where Debian's libnginx-mod-http-lua put its modules (unused when the "
        "nginx binary has Lua built in, as OpenResty's does).",
    )

    # Admin bootstrap.
    admin_user: str = "admin"
    admin_token: str | None = None
    secret_key: str | None = Field(default=None, description="Key for secrets at rest.")
    invitation_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="How many days a sign-up link (`POST /api/v1/invitations`) works, unless "
        "the invitation names its own; each link works once.",
    )

    # Docker and builds.
    docker_cli: str | None = Field(
        default=None, description="docker CLI with built-in BuildKit; default /usr/bin/docker."
    )
    base_image_repo: str = "spaceport/python"
    default_python: str = "3.11"
    build_ca_bundle: Path | None = Field(
        default_factory=_default_ca_bundle,
        description="Extra CA bundle trusted by builds (corporate TLS proxies).",
    )
    build_index_url: str | None = Field(default=None, description="Package index for builds.")
    build_extra_index_urls: list[str] = Field(default_factory=list)
    build_timeout_s: int = 1800
    build_memory: str = Field(
        default="4g", description="Memory of all builds running on the node together."
    )
    build_installer: Literal["uv", "pip"] = Field(
        default="uv", description="uv with a shared wheel cache; pip: plain, no cache (baseline)."
    )
    build_cache: bool = Field(
        default=True, description="False: every build from scratch (no layer or wheel cache)."
    )
    build_cache_id: str = Field(
        default="spaceport-uv", description="BuildKit cache mount id of the shared wheel cache."
    )
    build_log_max_bytes: int = 2_000_000
    app_network: str = "spaceport-apps"
    app_egress: bool = Field(default=True, description="Apps may open connections outward.")
    build_isolation: bool = Field(
        default=True, description="Firewall build steps away from host services and metadata."
    )
    build_bridge: str = Field(default="docker0", description="The bridge build steps run on.")
    app_runtime: str | None = Field(
        default=None,
        description="OCI runtime for app containers, registered in the engine's daemon.json "
        "(`runsc` for gVisor, the stronger isolation mode); unset: the engine's default (runc). "
        "A flavor's own `runtime` wins over it.",
    )
    app_egress_ports: list[int] = Field(
        default_factory=list, description="If set, the only ports apps may reach outward."
    )
    app_node_hosts: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Names of this node that apps resolve to its public entry point (their "
        "bridge's gateway), so that one Space can call another through HF_ENDPOINT: the "
        "console's, the apps host (path mode), public Spaces' and the owner's own Spaces' "
        "hosts (subdomain mode). auto: names under .localhost, which resolve nowhere else "
        "(a console on `localhost` is `host.docker.internal` to apps); on: the real domain's "
        "names too (DNS that does not bring apps back to this node, or a TLS terminator on "
        "this host); off: left to DNS.",
    )
    git_max_push_bytes: int = Field(default=1_000_000_000, description="receive.maxInputSize")
    list_page_size: int = Field(
        default=100,
        ge=1,
        description="Spaces in one page of GET /api/spaces when the client asks no `limit` "
        '(huggingface_hub\'s list_spaces follows the `Link: rel="next"` header to the end).',
    )
    list_page_max: int = Field(
        default=1000,
        ge=1,
        description="Most Spaces in one page of GET /api/spaces, whatever `limit` asks "
        "(the Hub's cap); the client pages on.",
    )
    upload_max_file_bytes: int = Field(
        default=10 * 1024**2,
        description="Largest file huggingface_hub may upload inline (upload_file/create_commit).",
    )
    git_max_file_bytes: int = Field(default=50 * 1024**2, description="Largest file in a push.")
    git_max_files: int = Field(default=20_000, description="Most files in a pushed commit.")

    # Runtime.
    default_hardware: str = "cpu-basic"
    startup_timeout_s: int = 1800
    readiness_poll_s: float = 0.1
    reconcile_interval_s: float = 5.0
    wake_hold_s: float = Field(
        default=3.0,
        ge=0,
        description="How long a visitor's request that wakes a deep-sleeping Space is held "
        "while it starts: woken by then, the request is sent on to the app (a redirect to the "
        "same URL), so the visitor sees the app and never the status page; else the status "
        "page, which follows the start. 0: the status page at once.",
    )
    default_sleep_s: int = Field(
        default=0,
        validation_alias=AliasChoices(
            "SPACEPORT_DEFAULT_SLEEP_S",
            "default_sleep_s",
            "SPACEPORT_DEFAULT_SLEEP_TIME_S",  # its earlier name: still read
            "default_sleep_time_s",
        ),
        description="Idle seconds after which a Space that set no sleep time of its own "
        "deep-sleeps (container stopped, memory given back; a visitor wakes it). A Space's own "
        "sleep time wins, -1 (never) included. 0 or none: such Spaces never sleep. Also read "
        "as SPACEPORT_DEFAULT_SLEEP_TIME_S.",
    )
    light_sleep_s: int = Field(
        default=300,
        description="Freeze a sleepable idle Space after this long (or half its sleep time, "
        "whichever is sooner); 0 turns light sleep off.",
    )
    compress_after_s: int = Field(
        default=60,
        description="Compress a running Space after this long idle: the memory its app does "
        "not touch goes to the node's zram swap (about a third of its size there); the app "
        "keeps answering, a request faults back what it needs. Spaces that never sleep too. "
        "0 turns it off; so does a node without zram swap.",
    )
    zram_size_percent: int = Field(
        default=100,
        description="`spaceport up` sets up a zram swap device of this much of the node's RAM "
        "(uncompressed capacity: it takes about a third of that in RAM when full) unless the "
        "node has one; 0: leave swap alone. Needs root and the kernel's zram.",
    )
    standby_ttl_s: int = Field(
        default=600,
        description="After a Gradio or Streamlit Space deploys, keep a standby container that "
        "already imported its SDK for this long: the Space's next code-only version starts in "
        "it (about a second instead of the SDK's whole import). 0 turns standbys off.",
    )
    standby_delay_s: float = Field(
        default=20.0,
        description="How long after a deploy its standby is prepared (the new version's first "
        "visitors come first); it waits further while builds or starts are under way.",
    )
    wake_standby_budget_mib: int = Field(
        default=0,
        ge=0,
        description="Memory the node may spend on wake standbys: the most recently visited "
        "deep-sleeping Gradio and Streamlit Spaces each keep a container of their own that "
        "already imported the SDK (each counted at 128 MiB), so their next wake skips that import. "
        "0 turns them off. In cluster mode (`runtime = swarm`) it is the whole cluster's.",
    )
    pool_budget_mib: int = Field(
        default=0,
        ge=0,
        description="Memory the node may spend on its pool: containers bound to no Space, one "
        "per dependency set its Gradio and Streamlit Spaces use (the most used first, more "
        "while the budget lasts), that already imported the SDK. A Space of that dependency "
        "set waking from deep sleep, or starting for the first time, takes one (its code, "
        "name, limits and environment moved in) and skips the SDK's import. Each is counted at "
        "128 MiB and used once. 0 turns the pool off; always off in cluster mode.",
    )
    data_disks: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Each Space's /data as a filesystem of its tier's size (ext4 in a sparse "
        "file on a loop device: an app that fills it gets 'No space left on device', the "
        "node's disk is untouched). auto: when the control plane is root with loop devices; "
        "off: a plain engine volume with no size limit.",
    )
    data_sizes: dict[str, ByteSize] = Field(
        default_factory=lambda: dict(DEFAULT_DATA_SIZES),
        description="Size of /data per storage tier (Hugging Face's 20 GB, 150 GB, 1 TB); "
        "tiers not named keep these.",
    )
    app_writable_max: ByteSize = Field(
        default=ByteSize(50 * 1000**3),
        description="Most an app may write to its own files outside /data (its container's "
        "writable layer; Hugging Face's 50 GB of ephemeral disk). The reconciler measures it "
        "every app_writable_check_s; an app over it is stopped with that error and restarted "
        "from its image. Under gVisor (runsc) those writes stay in the app's memory instead.",
    )
    log_rate: ByteSize = Field(
        default=ByteSize(1024**2),
        description="Most bytes per second each app's stdout, and its stderr, pass to its log; "
        "past it lines are dropped, with a note per second of how much (engine/app_init.py). "
        "0: no rate cap (the size cap of 2 x 10 MB still holds).",
    )
    log_burst: ByteSize = Field(
        default=ByteSize(4 * 1024**2),
        description="Bytes an app's stream may log at once above log_rate (a start-up burst).",
    )
    app_writable_check_s: float = Field(
        default=30.0, description="How often the writable layers are measured (0: never)."
    )
    drain_s: float = Field(default=2.0, description="Old container's grace after traffic moves.")
    crash_backoff_s: float = Field(default=5.0, description="Second automatic restart's delay.")
    crash_backoff_max_s: float = 300.0
    deploy_threads: int = Field(default=4, description="Concurrent starts in the API process.")
    flavors: dict[str, FlavorConfig] = Field(
        default_factory=dict, description="Hardware flavors added to or replacing the defaults."
    )
    default_quota: QuotaConfig = Field(
        default_factory=QuotaConfig,
        description="The limits of every user and organization an admin gave no quota of its "
        'own (`spaceport quota set`), e.g. `{"spaces": 5, "cpu": 8, "builds_per_hour": 20}` '
        "(keys: spaces, cpu, memory_gb, gpus, storage_gb, builds_per_hour); none by default. "
        "A namespace's own quota starts from these; site admins' own namespaces are spared.",
    )
    # Monitoring: see docs/operations.md, "Monitoring".
    metrics: bool = Field(
        default=True,
        description="Record the platform's own metrics (builds, deploys, sleeps and wakes, "
        "reconciler passes in Redis; control-plane request latency in the API process) for "
        "GET /api/v1/metrics. Off: those families are not exported; each Space's proxy "
        "counters still are.",
    )
    history_interval_s: int = Field(
        default=60,
        ge=1,
        description="Seconds between two points of the console's graphs (each Space's "
        "requests, errors, latency, CPU, memory and stage; the node's use). A day of points is "
        "kept at this step and a week at ten times it, in Redis (services/history.py).",
    )
    # GPUs: see docs/gpu.md.
    gpu_discovery: Literal["auto", "nvml", "config", "none"] = "auto"
    gpus: list[GpuConfig] = Field(default_factory=list, description="GPUs when discovery=config.")
    gpu_mode: Literal["device-requests", "cdi", "devices"] = Field(
        default="device-requests",
        description="device-requests: NVIDIA container toolkit; cdi: CDI names; devices: "
        "device nodes plus a read-only driver library mount (hosts without the toolkit).",
    )
    gpu_control_devices: list[str] = Field(
        default_factory=lambda: ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"],
        description="devices mode: nodes every GPU container also gets (host[:container]).",
    )
    gpu_driver_dir: Path | None = Field(
        default=None, description="devices mode: host folder of the driver's libraries."
    )
    org_creation: Literal["users", "admins"] = Field(
        default="users",
        description="Who may create organizations: any user (as on Hugging Face) or only "
        "administrators (a new organization starts with the default quota, so where quotas "
        "bind, `admins` keeps users from side-stepping theirs).",
    )
    # Shared GPUs (ZeroGPU): see docs/gpu.md, "Shared GPUs".
    zero_gpu_pool: list[str] = Field(
        default_factory=list,
        description="UUIDs of this node's GPUs lent call by call to shared-GPU flavors "
        "(zero-a10g); never given whole to a Space. Empty: no shared GPUs.",
    )
    zero_gpu_calls_per_gpu: int = Field(
        default=1, ge=1, description="Calls that may hold one pool GPU at the same time."
    )
    zero_gpu_default_duration_s: float = Field(
        default=60, gt=0, description="A call's GPU time when @spaces.GPU names no duration."
    )
    zero_gpu_max_duration_s: float = Field(
        default=120, gt=0, description="The most GPU time one call may ask for (longer: cut)."
    )
    zero_gpu_quota_s: float = Field(
        default=0,
        ge=0,
        description="GPU seconds one Space may use per zero_gpu_quota_period_s (0: no limit).",
    )
    zero_gpu_quota_period_s: float = Field(
        default=86400, gt=0, description="The period zero_gpu_quota_s counts over."
    )

    @model_validator(mode="after")
    def _cluster_mode(self) -> Settings:
        """The node pool renames containers and changes their limits, which a Swarm service's
        task cannot: none in cluster mode (standbys are services of their own, and run there)."""
        if self.runtime == "swarm":
            self.pool_budget_mib = 0
        return self

    @field_validator("data_sizes")
    @classmethod
    def _all_tiers(cls, v: dict[str, ByteSize]) -> dict[str, ByteSize]:
        unknown = set(v) - set(DEFAULT_DATA_SIZES)
        if unknown:
            raise ValueError(f"unknown storage tiers {sorted(unknown)}: small, medium, large")
        return {**DEFAULT_DATA_SIZES, **v}

    @field_validator("default_sleep_s", mode="before")
    @classmethod
    def _no_sleep(cls, v: object) -> object:
        """none/null/empty (and the old setting's null default) mean what 0 means: off."""
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "null")):
            return 0
        return v

    @field_validator("data")
    @classmethod
    def _absolute_data(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("SPACEPORT_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # Derived paths: one place that knows the data dir's layout.
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'spaceport.db'}"

    @property
    def instance(self) -> str:
        """A short id of this node's data dir: labels its containers apart from other nodes'."""
        import hashlib

        return hashlib.sha1(str(self.data).encode()).hexdigest()[:12]

    @property
    def repos_dir(self) -> Path:
        return self.data / "repos"

    @property
    def run_dir(self) -> Path:
        return self.data / "run"

    @property
    def logs_dir(self) -> Path:
        return self.data / "logs"

    @property
    def caddy_admin_socket(self) -> Path:
        return self.run_dir / "caddy-admin.sock"

    @property
    def nginx_admin_socket(self) -> Path:
        return self.run_dir / "nginx-admin.sock"

    @property
    def zero_gpu_dir(self) -> Path:
        """The shared-GPU broker's socket folder, mounted into shared-GPU apps."""
        return self.run_dir / "zero-gpu"

    @property
    def https(self) -> bool:
        """nginx ends TLS itself (proxy/tls.py): an https SPACEPORT_URL, no TLS terminator in
        front, and nginx as the proxy (Caddy's config here is plain HTTP)."""
        return (
            self.url.lower().startswith("https://")
            and self.tls_termination == "nginx"
            and self.proxy == "nginx"
        )

    @property
    def api_upstream(self) -> str:
        return f"{self.api_host}:{self.api_port}"

    @property
    def public_port(self) -> int | None:
        from urllib.parse import urlparse

        return urlparse(self.url).port

    @property
    def entry_ports(self) -> list[int]:
        """The public entry point's TCP ports on this host: the proxy's listen port, and the
        public URLs' (a TLS terminator on this host in front of the proxy)."""
        from urllib.parse import urlparse

        ports = []
        listen_port = self.listen.rsplit(":", 1)[-1]
        if listen_port.isdigit():
            ports.append(int(listen_port))
        for url in (self.url, self.apps_url or self.url):
            parsed = urlparse(url)
            ports.append(parsed.port or (443 if parsed.scheme == "https" else 80))
        return sorted(set(ports))

    @property
    def apps_origin(self) -> str:
        """Path mode: the origin every app is served under (a host apart from the console's)."""
        if self.apps_url:
            return self.apps_url.rstrip("/")
        port = self.public_port
        suffix = f":{port}" if port and port not in (80, 443) else ""
        scheme = self.url.split("://", 1)[0]
        return f"{scheme}://apps.{self.apps_domain}{suffix}"

    def app_host(self, owner: str, name: str) -> str:
        """Host name an app is served on (lower-case: DNS is); in path mode the apps host."""
        if self.routing == "path":
            from urllib.parse import urlparse

            return (urlparse(self.apps_origin).hostname or "").lower()
        label = f"{owner}-{name}".lower().replace(".", "-").replace("_", "-")
        return f"{label}.{self.apps_domain}"

    def app_path(self, owner: str, name: str) -> str:
        """The path an app lives under: `/` in subdomain mode, `/{owner}/{name}/` in path mode."""
        return f"/{owner}/{name}/" if self.routing == "path" else "/"

    def app_url(self, owner: str, name: str) -> str:
        if self.routing == "path":
            return self.apps_origin + self.app_path(owner, name)
        port = self.public_port
        suffix = f":{port}" if port and port not in (80, 443) else ""
        scheme = self.url.split("://", 1)[0]
        return f"{scheme}://{self.app_host(owner, name)}{suffix}/"

    def ensure_dirs(self) -> None:
        for d in (self.data, self.repos_dir, self.run_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@lru_cache
def get_settings() -> Settings:
    return Settings()
