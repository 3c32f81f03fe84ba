"""The service's configuration: environment variables prefixed COMMITLEDGER_, or arguments."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
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
    chain_retry_seconds: float = Field(
        default=5.0, ge=0, description="How long to wait before asking a dead node again."
    )

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to `ledger.db` in the data directory."""
        return self.store_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def resolved_deployment_file(self) -> Path:
        """The deployment file, defaulting to `deployment.json` in the data directory."""
        return self.deployment_file or self.data_dir / "deployment.json"
