"""Settings: one pydantic-settings object, read from ``TELEREG_*`` variables.

Every field is documented in ``docs/configuration.md``; a test fails when one
is missing there. Secret keys are generated once into the data dir in
development, and refused when missing or placeholders outside development.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from telereg.core.errors import ConfigurationError

SECRET_FIELDS = ("pseudonym_key", "vault_key", "session_secret", "handover_key")
SECRETS_FILE = "secrets.json"
_PLACEHOLDERS = {"", "changethis", "changeme", "change-me", "secret", "placeholder", "xxx"}
_MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """All configuration of a telereg installation."""

    model_config = SettingsConfigDict(env_prefix="TELEREG_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = Field(
        "development",
        description="`development` generates missing secrets; `production` refuses them.",
    )
    data_dir: Path = Field(Path("./var"), description="Root of the lake, state DB and secrets.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the state DB; default SQLite file in the data dir."
    )
    region_code: str = Field(
        "140000", pattern=r"^[1-9][0-9]{5}$", description="Administrative code of the province."
    )
    engine: Literal["duckdb", "pyspark"] = Field("duckdb", description="Analysis engine.")
    spark_master: str = Field("local[2]", description="Spark master URL for the pyspark engine.")
    duckdb_memory_limit: str = Field(
        "",
        pattern=r"^$|^[0-9]+(\.[0-9]+)? ?([KMGT]i?B|[KMGT]|B)$",
        description="DuckDB memory_limit, e.g. `8GB`; empty: DuckDB default.",
    )
    pseudonym_key: SecretStr | None = Field(None, description="HMAC key for pseudonymisation.")
    vault_key: SecretStr | None = Field(None, description="Key that encrypts the identity vault.")
    session_secret: SecretStr | None = Field(None, description="Signs web session cookies.")
    handover_key: SecretStr | None = Field(
        None, description="Signs the case files handed over to partner agencies (HMAC-SHA256)."
    )
    default_language: Literal["zh_CN", "en"] = Field("zh_CN", description="UI language.")
    login_max_failures: int = Field(5, ge=1, description="Failed logins before a lockout.")
    login_lockout_seconds: int = Field(300, ge=1, description="First lockout; doubles each time.")
    login_lockout_max_seconds: int = Field(
        24 * 3600, ge=1, description="Longest lockout; the doubling stops here."
    )
    login_client_max_failures: int = Field(
        20, ge=1, description="Failed logins from one client address within the window."
    )
    login_client_window_seconds: int = Field(
        600, ge=1, description="Window in which a client's failed logins are counted."
    )
    reidentify_daily_limit: int = Field(
        200, ge=1, description="Clear values one user may reveal from the vault in 24 hours."
    )
    reidentify_requires_case: bool = Field(
        default=False,
        description="Every re-identification must name a case about the value (a hand-over "
        "names its own); for administrations whose rules tie each look to a case.",
    )
    reidentify_needs_approval: bool = Field(
        default=False,
        description="Every re-identification needs a case and another user's approval to "
        "reveal that case's values (the four-eyes rule); implies a case is required.",
    )
    reidentify_approval_hours: int = Field(
        24,
        ge=1,
        le=24 * 90,
        description="How long an approval to re-identify a case's values lasts once granted.",
    )
    session_max_age_seconds: int = Field(8 * 3600, ge=60, description="Web session lifetime.")
    secure_cookies: bool = Field(
        default=False,
        description="Mark cookies Secure (HTTPS); unset: true in production, false otherwise.",
    )
    max_request_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="Largest request body.")
    buildout_rsrp_threshold_dbm: float = Field(
        -105.0, le=-60, ge=-140, description="RSRP at the edge of predicted coverage (dBm)."
    )
    buildout_fade_margin_db: float = Field(
        0.0, ge=0, le=30, description="Margin subtracted from the link budget (dB)."
    )
    gigabit_city_thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            "gigabit_coverage": 0.8,
            "five_g_per_10k": 12.0,
            "port_share_10g": 0.3,
            "share_500m": 0.1,
        },
        description="Minimums a city must reach to count as a gigabit city.",
    )
    fraud_rules: dict[str, float] = Field(
        default_factory=dict,
        description="Anti-fraud rule thresholds by rule name, overriding the defaults "
        "(docs/fraud.md lists each one, its default and its reason).",
    )
    fraud_features: dict[str, float] = Field(
        default_factory=dict,
        description="What the anti-fraud features count as a short call and as switching "
        "together, overriding the defaults (docs/fraud.md gives each one and its reason).",
    )
    fraud_rule_score_threshold: float = Field(
        6.0, ge=0, description="Rule score from which a line with a device signal is a suspect."
    )
    fraud_model_threshold: float = Field(
        0.5, gt=0, le=1, description="Learned SIM-box probability from which a line is a suspect."
    )
    fraud_cards_per_operator: int = Field(
        5, ge=1, description="Active cards one ID number may hold at one operator."
    )
    fraud_gateway_tacs_file: Path | None = Field(
        None, description="CSV of gateway (GOIP) TACs replacing the shipped list."
    )
    jobs_max_running: int = Field(
        1, ge=1, description="Jobs (a month's fraud scan …) that run at once; the rest wait."
    )
    jobs_log_days: int = Field(
        30, ge=1, description="Days a finished job's log is kept (in jobs/ of the data dir)."
    )
    handover_retention_days: int = Field(
        180,
        ge=0,
        description="Days a hand-over package's file is kept after it was made; 0: forever.",
    )
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Root log level."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _postgres_urls_use_the_installed_driver(cls, value: str | None) -> str | None:
        """``postgres://`` and ``postgresql://`` (libpq's forms, as pg tools print them) name
        the psycopg driver telereg installs; other schemes stand as given."""
        if value is None:
            return None
        for scheme in ("postgres://", "postgresql://"):
            if value.startswith(scheme):
                return "postgresql+psycopg://" + value.removeprefix(scheme)
        return value

    @model_validator(mode="before")
    @classmethod
    def _secure_cookies_follow_the_environment(cls, data: Any) -> Any:
        """Unless set, cookies are Secure in production: its users reach it through HTTPS."""
        if isinstance(data, dict) and data.get("secure_cookies") is None:
            return {**data, "secure_cookies": data.get("environment") == "production"}
        return data

    @property
    def state_db_url(self) -> str:
        """The state DB URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def vault_dir(self) -> Path:
        return self.data_dir / "vault"

    def secret(self, name: str) -> bytes:
        """The named secret as bytes; raises if it was never resolved."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise ConfigurationError(f"secret {name!r} is not set", where="settings")
        return value.get_secret_value().encode()


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``TELEREG_*`` variables that make a child process read them back.

    A job runs in its own process, which must see the same data dir, state DB and
    keys as the process that started it, whether they came from variables, options
    or the secrets file.
    """
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, Path):
            text = str(value.resolve())
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"TELEREG_{name.upper()}"] = text
    return env


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_cookie_transport(settings: Settings, *, host: str, insecure_cookies: bool) -> None:
    """Refuse to serve other machines while session cookies could travel over plain HTTP.

    ``insecure_cookies`` is the operator's explicit override, for plain HTTP on a
    trusted network.
    """
    if settings.secure_cookies or insecure_cookies or is_loopback(host):
        return
    raise ConfigurationError(
        f"serving on {host} would send the session cookie without the Secure flag; set "
        "TELEREG_SECURE_COOKIES=true when users reach telereg through HTTPS, or pass "
        "--insecure-cookies to serve plain HTTP on a trusted network anyway",
        where="serve",
    )


def is_new_installation(settings: Settings) -> bool:
    """Whether ``settings`` name no installation yet: no state DB in the data dir, and no
    ``TELEREG_DATABASE_URL`` naming one elsewhere."""
    return settings.database_url is None and not (settings.data_dir / "state.db").exists()


def _is_placeholder(value: str) -> bool:
    return value.strip().lower() in _PLACEHOLDERS or len(value) < _MIN_SECRET_LENGTH


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data dir readable by its owner only: it holds keys, hashes and the vault."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    return data_dir


#: What each generated key would lose, by the data it is needed for: a new key over data
#: made under an old one cannot read it (the vault), join it (tokens), or check it (packages).
_KEYED_DATA = {
    "pseudonym_key": ("lake",),
    "vault_key": ("vault",),
    "handover_key": ("handovers",),
}


def _refuse_new_keys_for_old_data(data_dir: Path, missing: list[str]) -> None:
    """Refuse to make up a key for data that already needs the lost one (``secrets.json``
    deleted, or a copy of the data dir taken without it)."""
    path = data_dir / SECRETS_FILE
    for name in missing:
        for folder in _KEYED_DATA.get(name, ()):
            where = data_dir / folder
            if where.is_dir() and any(where.iterdir()):
                lost = (
                    f"{SECRETS_FILE} has no {name}"
                    if path.exists()
                    else f"{SECRETS_FILE} is missing"
                )
                raise ConfigurationError(
                    f"{lost}, but {where} holds data made with its {name}: a new key could "
                    f"not read or match it. Restore {SECRETS_FILE} from a backup (or set "
                    f"TELEREG_{name.upper()}); start afresh only in an empty data dir",
                    where=str(path),
                )


def _load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / SECRETS_FILE
    ensure_data_dir(data_dir)
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"not valid JSON ({err})", where=str(path)) from err
        _check_stored_secrets(stored, path)
    missing = [name for name in SECRET_FIELDS if not stored.get(name)]
    _refuse_new_keys_for_old_data(data_dir, missing)
    if missing:
        stored.update({name: secrets.token_urlsafe(32) for name in missing})
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        tmp.replace(path)
    owner_only(path)
    return stored


def _check_stored_secrets(stored: object, path: Path) -> None:
    """Refuse a secrets file that is not an object of long random texts (a hand edit gone
    wrong): a short key would be used without a word, a wrong shape fail later."""
    if not isinstance(stored, dict):
        raise ConfigurationError(
            "must be a JSON object of the keys by name (such as "
            '{"pseudonym_key": "…"}); restore it from a backup',
            where=str(path),
        )
    for name in SECRET_FIELDS:
        value = stored.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or _is_placeholder(value):
            raise ConfigurationError(
                f"{name} must be a random text of at least {_MIN_SECRET_LENGTH} characters; "
                "restore the file from a backup (a new key cannot read data made with the "
                "old one)",
                where=str(path),
            )


def owner_only(path: Path) -> None:
    """Narrow ``path`` to its owner (mode 0600), unless it already is: a read-only data dir
    whose files are already private is not an error (a command that only reads runs)."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def load_settings(*, existing: bool = False, **overrides: object) -> Settings:
    """Read settings from the environment, apply overrides and resolve secrets.

    In development, missing secrets are generated once and kept in
    ``<data_dir>/secrets.json`` (mode 0600). Elsewhere a missing or placeholder
    secret raises :class:`ConfigurationError` naming the variable to set.
    ``existing``: the installation must be there already (a command that only reads):
    refuse, creating nothing, when the data dir holds no state DB and no
    ``TELEREG_DATABASE_URL`` names one elsewhere.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)  # type: ignore[arg-type]
    except SettingsError as err:
        # (a setting read as JSON that is not: the library names only the field)
        named = re.search(r'field "([a-z_]+)"', str(err))
        variable = f"TELEREG_{named.group(1).upper()}" if named else "a TELEREG_ setting"
        raise ConfigurationError(f"{variable} is not valid JSON", where="settings") from err
    except ValidationError as err:
        problems = "; ".join(
            f"TELEREG_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigurationError(problems, where="settings") from err
    if existing and is_new_installation(settings):
        # (a mistyped or not yet restored data dir would otherwise get new keys and an
        # empty state DB, and the command would answer as if that were the installation)
        raise ConfigurationError(
            f"no installation in {settings.data_dir.resolve()} (it has no state.db): set "
            "TELEREG_DATA_DIR or --data-dir to an installation's data dir; a new one is "
            "started with telereg db upgrade",
            where="settings",
        )
    resolved: dict[str, SecretStr] = {}
    if settings.environment == "development":
        missing = [name for name in SECRET_FIELDS if getattr(settings, name) is None]
        if missing:
            stored = _load_or_create_secrets(settings.data_dir)
            resolved = {name: SecretStr(stored[name]) for name in missing}
    else:
        _check_production_secrets(settings)
    return settings.model_copy(update=resolved) if resolved else settings


def _is_repeated(value: str) -> bool:
    """Whether ``value`` is one character or a shorter text repeated (``xxxx…``,
    ``changemechangeme…``): however long, it holds no more than its pattern."""
    return any(value[period:] == value[:-period] for period in range(1, len(value) // 2 + 1))


def _check_production_secrets(settings: Settings) -> None:
    """Refuse a missing, placeholder or repeated key, and one key used for two purposes."""
    seen: dict[str, str] = {}
    for name in SECRET_FIELDS:
        variable = f"TELEREG_{name.upper()}"
        secret: SecretStr | None = getattr(settings, name)
        value = secret.get_secret_value() if secret is not None else ""
        if _is_placeholder(value):
            raise ConfigurationError(
                f"{variable} must be set to a random value of at least {_MIN_SECRET_LENGTH} "
                f"characters when TELEREG_ENVIRONMENT={settings.environment}",
                where="settings",
            )
        if _is_repeated(value):
            raise ConfigurationError(
                f"{variable} is one character or a short pattern repeated; set it to a "
                "random value (python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                where="settings",
            )
        if value in seen:
            # (a leak of one would give away the other: the vault's key with the tokens')
            raise ConfigurationError(
                f"{variable} is the same as {seen[value]}; each key needs a random value "
                "of its own",
                where="settings",
            )
        seen[value] = variable
