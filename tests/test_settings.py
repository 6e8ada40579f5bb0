from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest

from telereg.core.errors import ConfigurationError
from telereg.core.settings import SECRET_FIELDS, check_cookie_transport, load_settings


def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random key of its own for each secret, as production needs."""
    for name in SECRET_FIELDS:
        monkeypatch.setenv(f"TELEREG_{name.upper()}", secrets.token_urlsafe(32))


def test_defaults_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == Path("var")
    assert settings.engine == "duckdb"
    assert settings.default_language == "zh_CN"
    assert settings.state_db_url == f"sqlite:///{(tmp_path / 'var' / 'state.db')}"


def test_secrets_are_generated_once_with_0600(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_settings(data_dir=tmp_path)
    for name in SECRET_FIELDS:
        assert first.secret(name) == second.secret(name)
        assert len(first.secret(name)) >= 32
    assert len({first.secret(n) for n in SECRET_FIELDS}) == len(SECRET_FIELDS), "each its own"


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEREG_DATA_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("TELEREG_ENGINE", "pyspark")
    monkeypatch.setenv("TELEREG_SPARK_MASTER", "local[3]")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "x"
    assert settings.engine == "pyspark"
    assert settings.spark_master == "local[3]"


def test_an_explicit_secret_wins_over_the_generated_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEREG_PSEUDONYM_KEY", "k" * 40)
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret("pseudonym_key") == b"k" * 40


@pytest.mark.parametrize("value", [None, "changethis", "secret", "short-but-random-4f9"])
def test_production_refuses_missing_or_placeholder_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.setenv("TELEREG_ENVIRONMENT", "production")
    _keys(monkeypatch)
    if value is None:
        monkeypatch.delenv("TELEREG_VAULT_KEY")
    else:
        monkeypatch.setenv("TELEREG_VAULT_KEY", value)
    with pytest.raises(ConfigurationError, match="TELEREG_VAULT_KEY"):
        load_settings(data_dir=tmp_path)
    assert not (tmp_path / "secrets.json").exists(), "production never writes generated keys"


def test_production_accepts_real_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEREG_ENVIRONMENT", "production")
    _keys(monkeypatch)
    vault_key = secrets.token_urlsafe(32)
    monkeypatch.setenv("TELEREG_VAULT_KEY", vault_key)
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret("vault_key") == vault_key.encode()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TELEREG_HANDOVER_KEY", "x" * 46, "one character or a short pattern repeated"),
        ("TELEREG_SESSION_SECRET", "changeme" * 6, "one character or a short pattern repeated"),
        ("TELEREG_PSEUDONYM_KEY", "Ab3$" * 11 + "A", "one character or a short pattern repeated"),
        ("TELEREG_VAULT_KEY", None, "TELEREG_VAULT_KEY is the same as TELEREG_PSEUDONYM_KEY"),
    ],
)
def test_production_refuses_repeated_or_shared_keys(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    message: str,
) -> None:
    monkeypatch.setenv("TELEREG_ENVIRONMENT", "production")
    _keys(monkeypatch)
    # (None: the pseudonym key's value, used for this key too)
    shared = value if value is not None else secrets.token_urlsafe(32)
    if value is None:
        monkeypatch.setenv("TELEREG_PSEUDONYM_KEY", shared)
    monkeypatch.setenv(variable, shared)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(data_dir=tmp_path)


def test_a_corrupt_secrets_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"secrets\.json"):
        load_settings(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({"pseudonym_key": 5}, "pseudonym_key must be a random text of at least 32"),
        ({"vault_key": "a"}, "vault_key must be a random text of at least 32"),
    ],
)
def test_a_hand_edited_secrets_file_is_refused(
    tmp_path: Path, stored: object, message: str
) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps(stored))
    with pytest.raises(ConfigurationError, match=message):
        load_settings(data_dir=tmp_path)
    assert json.loads((tmp_path / "secrets.json").read_text()) == stored, "left as it was"


def test_a_read_only_private_secrets_file_is_read(tmp_path: Path) -> None:
    load_settings(data_dir=tmp_path)  # writes the file, owner only
    before = (tmp_path / "secrets.json").stat().st_ctime_ns  # (a chmod changes it)
    settings = load_settings(data_dir=tmp_path)  # nothing to narrow: no chmod, no write
    assert settings.secret("vault_key")
    assert (tmp_path / "secrets.json").stat().st_ctime_ns == before


def test_missing_secrets_are_added_to_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"vault_key": "v" * 40}))
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret("vault_key") == b"v" * 40
    assert set(json.loads((tmp_path / "secrets.json").read_text())) == set(SECRET_FIELDS)


def test_lost_keys_are_not_made_up_for_data_that_needs_them(tmp_path: Path) -> None:
    # secrets.json deleted, or a copy of the data dir taken without it: new keys would not
    # open the vault nor give the same tokens, so nothing starts until it is restored.
    first = load_settings(data_dir=tmp_path)
    (tmp_path / "vault").mkdir()
    (tmp_path / "vault" / "phone-0001.sealed").write_bytes(b"sealed")
    kept = (tmp_path / "secrets.json").read_text()
    (tmp_path / "secrets.json").unlink()
    with pytest.raises(ConfigurationError, match=r"secrets\.json is missing, but .*vault holds"):
        load_settings(data_dir=tmp_path)
    assert not (tmp_path / "secrets.json").exists(), "nothing was written"
    # A file without the key (a hand edit) is told apart from no file.
    (tmp_path / "secrets.json").write_text(json.dumps({"session_secret": "s" * 40}))
    with pytest.raises(ConfigurationError, match=r"has no vault_key, but .*vault holds data"):
        load_settings(data_dir=tmp_path)
    (tmp_path / "secrets.json").write_text(kept)
    assert load_settings(data_dir=tmp_path).secret("vault_key") == first.secret("vault_key")


@pytest.mark.parametrize(
    ("environment", "given", "secure"),
    [
        ("development", None, False),
        ("production", None, True),
        ("production", "false", False),
        ("development", "true", True),
    ],
)
def test_cookies_are_secure_in_production_unless_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    given: str | None,
    secure: bool,
) -> None:
    _keys(monkeypatch)
    monkeypatch.setenv("TELEREG_ENVIRONMENT", environment)
    if given is not None:
        monkeypatch.setenv("TELEREG_SECURE_COOKIES", given)
    assert load_settings(data_dir=tmp_path).secure_cookies is secure


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"])
def test_loopback_may_be_served_without_secure_cookies(tmp_path: Path, host: str) -> None:
    settings = load_settings(data_dir=tmp_path)
    check_cookie_transport(settings, host=host, insecure_cookies=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "telereg.example.org"])  # noqa: S104
def test_other_addresses_need_secure_cookies_or_an_explicit_override(
    tmp_path: Path, host: str
) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="TELEREG_SECURE_COOKIES=true"):
        check_cookie_transport(settings, host=host, insecure_cookies=False)
    check_cookie_transport(settings, host=host, insecure_cookies=True)
    secure = load_settings(data_dir=tmp_path, secure_cookies=True)
    check_cookie_transport(secure, host=host, insecure_cookies=False)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TELEREG_FRAUD_RULES", "notjson", "TELEREG_FRAUD_RULES is not valid JSON"),
        ("TELEREG_LOG_LEVEL", "LOUD", "TELEREG_LOG_LEVEL"),
        ("TELEREG_DUCKDB_MEMORY_LIMIT", "lots", "TELEREG_DUCKDB_MEMORY_LIMIT"),
    ],
)
def test_a_bad_setting_is_named_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=named):
        load_settings(data_dir=tmp_path)


def test_the_usual_spellings_of_a_setting_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libpq's URL form, as PostgreSQL's own tools print it, and a log level in lower case.
    monkeypatch.setenv("TELEREG_DATABASE_URL", "postgres://u@db:5432/telereg")
    monkeypatch.setenv("TELEREG_LOG_LEVEL", "debug")
    monkeypatch.setenv("TELEREG_DUCKDB_MEMORY_LIMIT", "8GB")
    settings = load_settings(data_dir=tmp_path)
    assert settings.state_db_url == "postgresql+psycopg://u@db:5432/telereg"
    assert settings.log_level == "DEBUG"


def test_an_existing_installation_is_not_made_up_where_there_is_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no installation in .* has no state\.db"):
        load_settings(data_dir=tmp_path / "typo", existing=True)
    assert not (tmp_path / "typo").exists(), "no directory, no keys"
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "state.db").touch()
    assert load_settings(data_dir=tmp_path / "var", existing=True).data_dir == tmp_path / "var"
