"""Every setting in one place: flags over `COMMITLEDGER_*` over commitledger.toml over defaults."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.keyfiles import checked_scrypt_n
from ledger import InvalidDocumentError
from verifier import DEFAULT_OFFICE_HOURS, OFFICE_HOURS_MAX_CHARS, parse_periods

KIB = 1024
ENV_PREFIX = "COMMITLEDGER_"
CONFIG_FILE = "commitledger.toml"  # read from the data directory, or the file --config names
CONFIG_ENV = "COMMITLEDGER_CONFIG"
DEFAULT_DATA_DIR = Path("data")
MASTER_KEY_FILE = "master.key"  # in the data directory, made by `commitledger init`

# The TOML file the next Settings reads (set by `Settings.load` for one construction).
_toml_file: ContextVar[Path | None] = ContextVar("commitledger_toml_file", default=None)


class SettingsError(InvalidDocumentError):
    """A setting has a value it cannot have (named as where it was given), or the
    configuration file cannot be read."""


class Settings(BaseSettings):
    """Where the store, the deployment and the keys are, and the service's limits.

    Every field reads from `COMMITLEDGER_<FIELD>`; the store URL also from
    `COMMITLEDGER_STORE` and the master key from `COMMITLEDGER_MASTER_KEY`, as the
    command line reads them.
    """

    model_config = SettingsConfigDict(
        env_prefix="COMMITLEDGER_", extra="ignore", validate_by_name=True, frozen=True
    )
    # Clear key files accepted: set by `serve --demo` only (`for_demo`), never by the
    # environment or a configuration file.
    _demo_keys: bool = PrivateAttr(default=False)

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where the store, keys, deployment and managed chain live by default.",
    )
    store_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMITLEDGER_STORE_URL", "COMMITLEDGER_STORE", "store_url"),
        description="SQLAlchemy URL of the store (default: SQLite in the data directory).",
    )
    deployment_file: Path | None = Field(
        default=None, description="The file `commitledger deploy` wrote (default: in data_dir)."
    )
    master_key_file: Path | None = Field(
        default=None,
        description="The store's master key file (default: the data directory's master.key, "
        "if there), an encrypted keystore opened with the key passphrase (a clear one only "
        "with serve --demo); without a key, intake is closed.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="The master key itself (base64), if no file is given; prefer the "
        "encrypted file: an environment is not a key at rest.",
    )
    chain_rpc_url: str | None = Field(
        default=None, description="JSON-RPC URL of a node (default: the deployment file's)."
    )
    public_rpc_url: str | None = Field(
        default=None, description="A node URL the public may use, shown on the lookup page."
    )
    explorer_url: str | None = Field(
        default=None,
        description="A block explorer's address of a transaction, {tx} standing for its hash "
        "(https://explorer.example/tx/{tx}): linked from each record's page.",
    )
    max_body_bytes: int = Field(
        default=256 * KIB, ge=1, description="The largest request body the service reads."
    )
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
    department: str | None = Field(
        default=None,
        max_length=64,
        description="Run as this department's instance (serve --department): hold only its "
        "keys and take only its writes (default: every department whose keys are there).",
    )
    key_passphrase_file: Path | None = Field(
        default=None,
        description="The file holding the passphrase of the encrypted key files (keystores, "
        "encrypted PKCS#8); or set COMMITLEDGER_KEY_PASSPHRASE.",
    )
    key_passphrase: SecretStr | None = Field(
        default=None, description="The key files' passphrase itself, if no file is given."
    )
    key_scrypt_n: int | None = Field(
        default=None,
        description="The scrypt cost n of keystores made from now on, a power of two "
        "(default: the standard 2**18; lower only for tests: `keys check` warns of it).",
    )
    catalog_dir: Path | None = Field(
        default=None,
        description="The matter catalog: a directory of one <DEPARTMENT>.json per department "
        "(default: the catalog shipped in verifier/matters).",
    )
    sources_url: str | None = Field(
        default=None, description="Base URL of the department data service for verification."
    )
    sources_token_file: Path | None = Field(
        default=None, description="The file holding the data service's token."
    )
    sources_key_file: Path | None = Field(
        default=None,
        description="The department's Ed25519 public key for the data service's answers (PEM "
        "or base64 of the raw 32 bytes): an answer not signed with it is refused.",
    )
    anchoring: bool = Field(
        default=True, description="Anchor pending commitments in the background."
    )
    anchor_max_age: float = Field(
        default=2.0, gt=0, description="Seconds a pending commitment waits for a fuller batch."
    )
    feed: bool = Field(
        default=True,
        description="Build the credit feed in the background under the lease `feed` (needs "
        "the master key and the report.pem of every department it signs for).",
    )
    lifecycle: bool = Field(
        default=True,
        description="Run each department's lifecycle job (expiries, overdue rectifications, "
        "provisional deadlines) on start and daily (needs its verifier.json and report.pem).",
    )
    lease_ttl_seconds: float = Field(
        default=15.0,
        ge=1.0,
        le=600.0,
        description="How long a background role (a department's anchoring, the feed, the "
        "lifecycle job, the notices) stays with an instance that stops renewing it: another "
        "instance on the same store takes it over within this plus one poll interval.",
    )
    lease_poll_seconds: float = Field(
        default=2.0,
        ge=0.05,
        le=60.0,
        description="How often an instance renews its leases and asks for free ones (under "
        "half of lease_ttl_seconds).",
    )
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:@-]+$",
        description="This instance's name in the lease table (default hostname:pid).",
    )
    feed_confirmations: int = Field(
        default=0, ge=0, description="Blocks a status change must be deep to enter the feed."
    )
    objection_decision_days: int = Field(
        default=15,
        ge=1,
        le=60,
        description="Working days a department has to decide an objection (异议申诉).",
    )
    repair_decision_days: int = Field(
        default=10,
        ge=1,
        le=60,
        description="Working days a department has to decide a repair application (信用修复).",
    )
    office_hours: str = Field(
        default=DEFAULT_OFFICE_HOURS,
        max_length=OFFICE_HOURS_MAX_CHARS,
        description="The departments' office periods in Beijing time on working days, like "
        "09:00-12:00,13:00-17:00: one working day of a decision limit is their sum.",
    )
    notice_gateways: dict[str, str] = Field(
        default={},
        description="Each department's messaging gateway, its code to a URL: notices of "
        "proposed breaches (告知书) are POSTed there, at least once, in the background.",
    )
    notice_gateway_secret: SecretStr | None = Field(
        default=None,
        description="The secret (64 hex digits) that signs each notice's body "
        "(Notice-Signature: t=<unix>,v1=<HMAC-SHA256 hex>), as the feed's webhooks do.",
    )
    notice_gateway_token: SecretStr | None = Field(
        default=None, description="A bearer token sent to the gateways with each notice."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments (the command line's flags), then the environment, then the TOML file."""
        toml = _toml_file.get()
        if toml is None:
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml)

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, *, config: Path | None = None
    ) -> Settings:
        """The settings: `flags` (None values ignored) over the environment over the
        configuration file (`config` or a "config" flag, `$COMMITLEDGER_CONFIG`, or the
        data directory's commitledger.toml) over the defaults; a bad value is a
        SettingsError naming it."""
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        config = config or given.pop("config", None)  # a command's --config, with its flags
        path = config_file(given, config)
        if path is not None:
            _known_keys(path)
        token = _toml_file.set(path)
        try:
            settings = cls(**given)
        except ValidationError as exc:
            raise SettingsError(describe_errors(exc, given, path)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not TOML ({exc})") from None
        finally:
            _toml_file.reset(token)
        kept = settings.data_dir / MASTER_KEY_FILE
        if settings.master_key is None and settings.master_key_file is None and kept.is_file():
            return settings.model_copy(update={"master_key_file": kept})
        return settings

    @field_validator("chain")
    @classmethod
    def _chain_kind(cls, value: str) -> str:
        if value in ("anvil", "embedded") or value.startswith(("http://", "https://")):
            return value
        raise ValueError("chain must be anvil, embedded or an http(s) JSON-RPC URL")

    @field_validator("key_scrypt_n")
    @classmethod
    def _scrypt_cost(cls, value: int | None) -> int | None:
        return None if value is None else checked_scrypt_n(value)

    @field_validator("office_hours")
    @classmethod
    def _office_periods(cls, value: str) -> str:
        return ",".join(str(period) for period in parse_periods(value))

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

    @field_validator("explorer_url")
    @classmethod
    def _explorer_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "{tx}" not in value:
            raise ValueError("explorer_url must be an http(s) URL holding {tx}")
        if any(c in value for c in "\"'<> \n"):
            raise ValueError("explorer_url must not hold quotes, angle brackets or spaces")
        return value

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
        if self.sources_key_file is not None and self.sources_url is None:
            raise ValueError("sources_key_file needs sources_url")
        if self.sources_url is not None and not self.sources_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("sources_url must be an http(s) URL")
        return self

    @model_validator(mode="after")
    def _lease_poll_under_ttl(self) -> Settings:
        if self.lease_poll_seconds * 2 >= self.lease_ttl_seconds:
            raise ValueError("lease_poll_seconds must be under half of lease_ttl_seconds")
        return self

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies' addresses or networks, as uvicorn's forwarded_allow_ips."""
        return _entries(self.trusted_proxies)

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to `ledger.db` in the data directory."""
        return self.store_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    def for_demo(self) -> Settings:
        """These settings for `serve --demo`: its own keys, made in clear, are accepted."""
        copy = self.model_copy()
        copy._demo_keys = True
        return copy

    @property
    def demo_keys(self) -> bool:
        """Whether clear key files are accepted (`serve --demo` only)."""
        return self._demo_keys

    @property
    def resolved_keys_dir(self) -> Path:
        """The department keys' directory, defaulting to `keys` in the data directory."""
        return self.keys_dir or self.data_dir / "keys"

    @property
    def resolved_deployment_file(self) -> Path:
        """The deployment file, defaulting to `deployment.json` in the data directory."""
        return self.deployment_file or self.data_dir / "deployment.json"


def config_file(flags: Mapping[str, Any], config: Path | None = None) -> Path | None:
    """The configuration file to read: `config`, `$COMMITLEDGER_CONFIG`, or the data
    directory's commitledger.toml if there is one; a named file must exist."""
    named = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if named is not None:
        if not named.is_file():
            raise SettingsError(f"configuration file {named}: no such file")
        return named
    data_dir = flags.get("data_dir") or os.environ.get(f"{ENV_PREFIX}DATA_DIR") or DEFAULT_DATA_DIR
    found = Path(data_dir) / CONFIG_FILE
    return found if found.is_file() else None


def _known_keys(path: Path) -> None:
    """SettingsError when the configuration file is not TOML or names a setting there is
    not (a misspelt one would otherwise be ignored without a word)."""
    try:
        keys = set(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not TOML ({exc})") from None
    unknown = sorted(keys - set(Settings.model_fields))
    if unknown:
        raise SettingsError(
            f"{path}: no setting is called {', '.join(unknown)} (`commitledger config show` "
            "lists them)"
        )


def env_names(field: str) -> list[str]:
    """The environment variables a field reads, the first the one documented."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a) for a in alias.choices if str(a).startswith(ENV_PREFIX)]
    return [f"{ENV_PREFIX}{field.upper()}"]


def origins(flags: Mapping[str, Any], config: Path | None = None) -> dict[str, str]:
    """Where each field's value comes from: `flag`, the environment variable, the
    configuration file, or `default`."""
    given = {k for k, v in flags.items() if v is not None}
    path = config_file(flags, config)
    from_env = set(EnvSettingsSource(Settings)())
    from_file: set[str] = set()
    if path is not None:
        from_file = set(TomlConfigSettingsSource(Settings, toml_file=path)())
    found: dict[str, str] = {}
    for field in Settings.model_fields:
        names = env_names(field)
        if field in given:
            found[field] = "flag"
        elif field in from_env or any(n in from_env for n in names):
            found[field] = next((n for n in names if n in os.environ), names[0])
        elif field in from_file:
            found[field] = str(path)
        else:
            found[field] = "default"
    return found


def describe_errors(exc: ValidationError, flags: Mapping[str, Any], path: Path | None) -> str:
    """A validation error in one line: each bad setting named as it was given (the flag,
    the variable or the file's key) and what it must be; never its value."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        if field not in Settings.model_fields:
            parts.append(message)
            continue
        if field in flags:
            where = f"--{field.replace('_', '-')}"
        elif any(n in os.environ for n in env_names(field)):
            where = next(n for n in env_names(field) if n in os.environ)
        elif path is not None:
            where = f"{field} in {path}"
        else:
            where = env_names(field)[0]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]
