"""The service's configuration: environment variables prefixed COMMITLEDGER_, or arguments."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024


class Settings(BaseSettings):
    """Where the store, the deployment and the keys are, and the service's limits.

    Every field reads from `COMMITLEDGER_<FIELD>`; the store URL also from
    `COMMITLEDGER_STORE` and the master key from `COMMITLEDGER_MASTER_KEY`, as the
    command line reads them.
    """

    model_config = SettingsConfigDict(
        env_prefix="COMMITLEDGER_", extra="ignore", validate_by_name=True, frozen=True
    )

    data_dir: Path = Path("data")
    store_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMITLEDGER_STORE_URL", "COMMITLEDGER_STORE", "store_url"),
        description="SQLAlchemy URL of the store (default: SQLite in the data directory).",
    )
    deployment_file: Path | None = Field(
        default=None, description="The file `commitledger deploy` wrote (default: in data_dir)."
    )
    master_key_file: Path | None = Field(
        default=None, description="The store's master key; without one, intake is closed."
    )
    master_key: SecretStr | None = Field(
        default=None, description="The master key itself (base64), if no file is given."
    )
    chain_rpc_url: str | None = Field(
        default=None, description="JSON-RPC URL of a node (default: the deployment file's)."
    )
    public_rpc_url: str | None = Field(
        default=None, description="A node URL the public may use, shown on the lookup page."
    )
    max_body_bytes: int = Field(default=256 * KIB, ge=1)
    rate_limit_burst: int = Field(default=60, ge=1, description="Public requests at once.")
    rate_limit_per_second: float = Field(
        default=2.0, gt=0, description="Public requests per second and client, sustained."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed (default none: the client is the "
        "peer address).",
    )
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Wrong tokens an address may send per window."
    )
    auth_failure_window_seconds: float = Field(
        default=60.0, gt=0, description="The window over which wrong tokens are counted."
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's headers."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Seconds a client has to send a request's body."
    )
    public_base_url: str | None = Field(
        default=None,
        description="The service's public URL (https://ledger.example.org), shown in the "
        "lookup page's commands (default: http://127.0.0.1:<port>; never the Host header).",
    )
    chain_retry_seconds: float = Field(
        default=5.0, ge=0, description="How long to wait before asking a dead node again."
    )
    chain: str = Field(
        default="anvil",
        description="`anvil` (a managed node, its state in the data directory), `embedded` "
        "(in process, ephemeral) or an http(s) JSON-RPC URL.",
    )
    keys_dir: Path | None = Field(
        default=None,
        description="Department keys: <keys_dir>/<D>/registrar.json, verifier.json and "
        "report.pem (default: data_dir/keys).",
    )
    sources_url: str | None = Field(
        default=None, description="Base URL of the department data service for verification."
    )
    sources_token_file: Path | None = Field(
        default=None, description="The file holding the data service's token."
    )
    anchoring: bool = Field(
        default=True, description="Anchor pending commitments in the background."
    )
    anchor_max_age: float = Field(
        default=2.0, gt=0, description="Seconds a pending commitment waits for a fuller batch."
    )
    feed: bool = Field(
        default=True,
        description="Follow the chain into the credit feed in the background (needs the "
        "master key and a department's report.pem).",
    )
    feed_confirmations: int = Field(
        default=0, ge=0, description="Blocks a status change must be deep to enter the feed."
    )

    @field_validator("chain")
    @classmethod
    def _chain_kind(cls, value: str) -> str:
        if value in ("anvil", "embedded") or value.startswith(("http://", "https://")):
            return value
        raise ValueError("chain must be anvil, embedded or an http(s) JSON-RPC URL")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for entry in _entries(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network"
                ) from None
        return ",".join(_entries(value))

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or any(c in value for c in "?#\"'<> \n"):
            raise ValueError("public_base_url must be an http(s) URL without query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _sources_together(self) -> Settings:
        if (self.sources_url is None) != (self.sources_token_file is None):
            raise ValueError("sources_url and sources_token_file go together")
        if self.sources_url is not None and not self.sources_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("sources_url must be an http(s) URL")
        return self

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies' addresses or networks, as uvicorn's forwarded_allow_ips."""
        return _entries(self.trusted_proxies)

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to `ledger.db` in the data directory."""
        return self.store_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def resolved_keys_dir(self) -> Path:
        """The department keys' directory, defaulting to `keys` in the data directory."""
        return self.keys_dir or self.data_dir / "keys"

    @property
    def resolved_deployment_file(self) -> Path:
        """The deployment file, defaulting to `deployment.json` in the data directory."""
        return self.deployment_file or self.data_dir / "deployment.json"


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]
