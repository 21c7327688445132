"""``ApiKeys.from_settings``: keys asked for but unusable are one-line errors, never the key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from switchboard.bff import ApiKeys
from switchboard.orchestrator import ConfigurationError, Settings, load_settings

ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789ab"


def _error(settings: Settings, *secrets: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        ApiKeys.from_settings(settings)
    message = str(caught.value)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message  # never echo a key
    return message


def test_a_keys_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"\xff\xfe" + f"alice:{ALICE}\n".encode("utf-16-le"))
    message = _error(Settings(api_keys_file=str(path)), ALICE)
    assert f"The API keys file {path} is not UTF-8 text" in message
    assert "\\x" not in message  # nor bytes of the file


def test_a_keys_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(f"alice:{ALICE}\n".encode("utf-8-sig"))
    keys = ApiKeys.from_settings(Settings(api_keys_file=str(path)))
    assert keys.authenticate(f"Bearer {ALICE}") == "alice"


@pytest.mark.parametrize(
    "content", ["", "\n\n   \n", "# users\n\n# alice:sha256:...\n", "  # indented comment\n"]
)
def test_a_keys_file_holding_no_key_is_an_error_not_local_mode(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    message = _error(Settings(api_keys_file=str(path)))
    assert f"The API keys file {path} holds no API key" in message


@pytest.mark.parametrize("value", [",", " ", " , ,"])
def test_api_keys_holding_no_key_is_an_error_not_local_mode(value: str) -> None:
    settings = load_settings(environ={"SWITCHBOARD_API_KEYS": value})
    assert settings.api_keys == value  # reachable from the environment
    assert "SWITCHBOARD_API_KEYS holds no API key" in _error(settings)


def test_empty_settings_still_mean_local_mode() -> None:
    settings = load_settings(environ={"SWITCHBOARD_API_KEYS": "", "SWITCHBOARD_API_KEYS_FILE": ""})
    assert not ApiKeys.from_settings(settings).enabled


def test_one_key_for_two_users_in_a_file_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# users\n\nalice:{ALICE}\nbob:{BOB}\ncarol:{ALICE}\n")
    message = _error(Settings(api_keys_file=str(path)), ALICE)
    assert f"{path} line 3 and {path} line 5 give the same key" in message
    assert "'alice' and 'carol'" in message


def test_one_key_for_two_users_as_plain_and_digest_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    digest = hashlib.sha256(ALICE.encode()).hexdigest()
    path.write_text(f"alice:{ALICE}\nmallory:sha256:{digest}\n")
    message = _error(Settings(api_keys_file=str(path)), ALICE, digest)
    assert f"{path} line 1 and {path} line 2 give the same key" in message


def test_one_key_for_two_users_across_settings_names_both_places(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"bob:{BOB}\n")
    settings = Settings(api_keys=f"alice:{ALICE},eve:{BOB}", api_keys_file=str(path))
    message = _error(settings, BOB)
    assert f"SWITCHBOARD_API_KEYS entry 2 and {path} line 1 give the same key" in message
    message = _error(Settings(api_keys=f"alice:{ALICE}, bob:{ALICE}"), ALICE)
    assert "SWITCHBOARD_API_KEYS entry 1 and SWITCHBOARD_API_KEYS entry 2" in message


def test_one_user_may_have_several_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    new_key = "alice-new-key-0123456789"
    path.write_text(f"alice:{ALICE}\nalice:{new_key}\nalice:{ALICE}\nbob:{BOB}\n")
    keys = ApiKeys.from_settings(Settings(api_keys_file=str(path)))
    assert keys.authenticate(f"Bearer {ALICE}") == "alice"
    assert keys.authenticate(f"Bearer {new_key}") == "alice"
    assert keys.authenticate(f"Bearer {BOB}") == "bob"
    assert keys.users == {"alice", "bob"}
