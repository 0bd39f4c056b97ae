"""Settings shared by the server, the CLI and the tests (environment variables ``DESKFLEET_*``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESKFLEET_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite:///deskfleet.db"
    broadcast_url: str = "memory://"
    # R20: the Fernet key that encrypts connection passwords (DESKFLEET_SECRET_KEY); several keys
    # separated by commas rotate (the first encrypts, all decrypt). Unset, the embedded default
    # generates one into ``secret_key_file`` (mode 0600): either way it lives outside the database.
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path("deskfleet.secret")
    production: bool = False
    json_logs: bool = False  # one JSON object per log line, with the request id

    heartbeat_timeout_seconds: float = Field(default=120.0, gt=0)  # R9
    machine_key_lifetime_days: int = Field(default=365, gt=0)  # R10
    group_machine_limit: int = Field(default=50, gt=0)  # R11

    # The dispatcher (R25-R30): started by the app's lifespan unless turned off (tests drive it).
    dispatcher_enabled: bool = True
    dispatch_confirm_timeout_seconds: float = Field(default=60.0, gt=0)  # R28: back to the queue
    machine_lost_grace_seconds: float = Field(default=300.0, ge=0)  # R28: after R9's silence
    dispatch_sweep_interval_seconds: float = Field(default=5.0, gt=0)  # timeouts, lost machines
    # The fleet's statistics and runs' wait stretches are folded this often. A fold reads the
    # queue and what every busy machine carries: at every 5 s sweep it took 3-5 % of a server's
    # core with 1,250 queued and 1,250 running runs (`trivial`, docs/performance.md).
    statistics_fold_seconds: float = Field(default=30.0, gt=0)

    # Realtime (R35-R37): websockets and the event bus.
    ws_init_timeout_seconds: float = Field(default=5.0, gt=0)  # connection_init must come by then
    ws_max_subscriptions: int = Field(default=20, gt=0)  # per websocket connection
    # Browser pages from these origins may open a websocket (same-origin and non-browser clients
    # always can); "*" allows any. Env: DESKFLEET_WS_ALLOWED_ORIGINS='["https://ops.example"]'.
    ws_allowed_origins: list[str] = Field(default_factory=list)
    # Browser pages from these origins may call the API over HTTP (CORS) and open its websockets;
    # none by default. Exact origins only ("https://ops.example:8443"), never "*".
    # Env: DESKFLEET_CORS_ALLOWED_ORIGINS='["https://ops.example"]'.
    cors_allowed_origins: list[str] = Field(default_factory=list)
    ws_max_connections_per_user: int = Field(default=10, gt=0)  # per server process; 4429 past it
    # Connections (websockets and HTTP) one instance should be able to hold at once: `serve`
    # warns at start when its open-files limit leaves room for fewer. Nothing is refused past it.
    planned_connections: int = Field(default=10_000, gt=0)
    ws_max_message_bytes: int = Field(default=64_000, gt=0)  # one client message; 1009 past it
    # A revoked token or a deactivated user ends its open websockets within this (plus the
    # credential cache's few seconds on other instances of a cluster).
    ws_credential_check_seconds: float = Field(default=5.0, gt=0)
    realtime_queue_size: int = Field(default=256, gt=0)  # per subscriber; overflow -> resync
    broadcast_probe_seconds: float = Field(default=5.0, ge=0)  # redis:// end-to-end check
    presence_check_seconds: float = Field(default=5.0, gt=0)  # R9 timeouts -> MachineChanged

    # Failed authentication attempts per client address (HTTP and websocket): past the limit within
    # the window the address gets 429 (HTTP) or 4429 (websocket) until its oldest failure ages
    # out. Counted per server process: a cluster of N instances allows up to N times as many.
    auth_failure_limit: int = Field(default=10, gt=0)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto name the client (uvicorn's
    # forwarded_allow_ips): comma-separated addresses or networks, "*" for any; "" trusts none.
    # Behind a load balancer list its addresses, or every client shares the balancer's address.
    forwarded_allow_ips: str = "127.0.0.1"
    # /metrics names every environment's queue depth: served to these networks only, or to a
    # scraper presenting the metrics token (Authorization: Bearer <token>).
    metrics_allowed_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    metrics_token: SecretStr | None = None

    # R44: sign-in through the organisation's OpenID Connect provider, off unless the issuer is
    # set (docs/operations.md, "Sign-in with OpenID Connect"). Its access tokens (JWTs) are
    # accepted wherever a DeskFleet user token is; API tokens and machine keys keep working.
    oidc_issuer: str | None = None  # exactly as the provider's discovery document says it
    oidc_client_id: str | None = None  # the dashboard's public client (code + PKCE, no secret)
    oidc_audience: str | None = None  # the access tokens' `aud`; the client id when unset
    oidc_provider_name: str = Field(default="your organisation", min_length=1, max_length=100)
    oidc_scopes: str = "openid profile email"  # the dashboard asks for these
    oidc_subject_claim: str = "sub"
    oidc_email_claim: str = "email"
    oidc_name_claim: str = "name"
    oidc_groups_claim: str = "groups"
    # Linking by e-mail needs the provider to vouch for the address: this claim must be true.
    # "" trusts the e-mail claim as it is (a provider that only issues addresses it owns).
    oidc_email_verified_claim: str = "email_verified"
    oidc_link_by_email: bool = False  # a first sign-in may take over the user with that e-mail
    oidc_auto_provision: bool = False  # a first sign-in nobody matches creates a user
    # Asymmetric signatures only (RFC 8725): "none" and the HS* family are refused.
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: [
            *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
            *("ES256", "ES384", "ES512", "EdDSA"),
        ]
    )
    oidc_clock_skew_seconds: float = Field(default=60.0, ge=0, le=300)  # on exp, nbf and iat
    oidc_keys_refresh_seconds: float = Field(default=3600.0, gt=0)  # discovery and JWKS
    # An unknown key id refetches the JWKS (a rotation), at most once in this many seconds.
    oidc_unknown_key_refetch_seconds: float = Field(default=30.0, ge=0)
    oidc_timeout_seconds: float = Field(default=10.0, gt=0)  # each request to the provider
    # Webhooks (R43): the sender runs in every instance's lifespan unless turned off (tests
    # drive it); each delivery is claimed by one instance at a time.
    webhooks_enabled: bool = True
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0
    )  # how often due deliveries are looked for
    webhook_check_seconds: float = Field(
        default=15.0, gt=0
    )  # machine offline, run waiting, queue depth
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)  # one attempt, connect to answer
    webhook_concurrency: int = Field(default=8, gt=0)  # attempts in flight per instance
    webhook_retention_days: int = Field(default=30, gt=0)  # finished deliveries and their attempts
    # Targets in these networks are allowed although private, loopback or link-local (none by
    # default). Env: DESKFLEET_WEBHOOK_ALLOWED_NETWORKS='["10.0.0.0/8"]'.
    webhook_allowed_networks: list[str] = Field(default_factory=list)

    max_page_size: int = Field(default=100, gt=0)
    max_query_depth: int = Field(default=10, gt=0)
    max_aliases: int = Field(default=15, ge=0)
    max_tokens: int = Field(default=2000, gt=0)
    max_document_bytes: int = Field(default=15_000, gt=0)
    max_request_bytes: int = Field(default=256_000, gt=0)  # document plus variables
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # R39: an operation's cost, computed before it runs (api/transport/cost.py), is at most this;
    # each user and machine key spends costs from a bucket of cost_bucket_size points that
    # restores cost_restore_rate points a second, shared through Redis when broadcast_url is.
    max_query_cost: int = Field(default=1000, gt=0)
    # Room for the dashboard's sign-in (its documents at once cost ~1,100) and a steady
    # quarter of the most costly operation a second.
    cost_bucket_size: float = Field(default=5000.0, gt=0)
    cost_restore_rate: float = Field(default=250.0, gt=0)
    # Automatic persisted queries (api/transport/persisted_queries.py): documents kept by their
    # SHA-256, in this process and, with a redis:// event bus, in Redis for the cluster.
    persisted_query_cache_size: int = Field(default=1000, gt=0)
    # Accept only documents registered with `deskfleet documents register` (and the dashboard's
    # own): api/transport/trusted_documents.py.
    trusted_documents_only: bool = False
    # How soon a document registered while servers run is accepted by them.
    trusted_documents_refresh_seconds: float = Field(default=10.0, gt=0)
    persisted_query_ttl_seconds: int = Field(default=86_400, gt=0)
    # Traces (OpenTelemetry): exported over OTLP/HTTP to this endpoint, such as a collector's
    # http://127.0.0.1:4318/v1/traces; none is made unless it is set (api/traces.py).
    traces_otlp_endpoint: str | None = None
    traces_service_name: str = Field(default="deskfleet", min_length=1, max_length=100)
    parser_cache_size: int = Field(default=256, gt=0)
    validation_cache_size: int = Field(default=256, gt=0)

    @field_validator("traces_otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(
                f"{endpoint!r} is not an OTLP/HTTP endpoint: give http(s)://host:port/v1/traces"
            )
        return endpoint

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, issuer: str | None) -> str | None:
        if not issuer:
            return None
        parts = urlsplit(issuer)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError(
                f"{issuer!r} is not an OpenID Connect issuer: give its https:// URL, exactly as "
                "the provider's discovery document names it (http:// only on this host)"
            )
        return issuer

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        for algorithm in algorithms:
            if algorithm.lower() == "none" or algorithm.upper().startswith("HS"):
                raise ValueError(
                    f"{algorithm!r} cannot verify a provider's tokens: only asymmetric "
                    "signatures (RS*, PS*, ES*, EdDSA) are accepted"
                )
        if not algorithms:
            raise ValueError("name at least one signature algorithm")
        return algorithms

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network: give one like 10.0.0.0/8") from None
        return cidrs

    @field_validator("cors_allowed_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        origins = [origin.lower() for origin in origins]  # as browsers send them
        for origin in origins:
            if not is_origin(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: give scheme://host[:port] (http or https), "
                    "without a path or a trailing slash; each origin is listed, never '*'"
                )
        return origins


def is_origin(text: str) -> bool:
    """What a browser sends as ``Origin``: ``http(s)://host[:port]``, nothing after."""
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and port_ok
        and not parts.username
        and f"{parts.scheme}://{parts.netloc}" == text
        and "*" not in text
    )
