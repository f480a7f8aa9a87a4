"""customers.crypto: what is stored reveals nothing, names its key, and survives a key change."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers import crypto

NEW_KEY = "k2:" + "Q" * 43 + "="
NEW_INDEX_KEY = "k2:" + "R" * 43 + "="


def test_a_ciphertext_hides_the_value_names_its_key_and_decrypts():
    token = crypto.encrypt("D4412345627", purpose="customers.drivers_license")
    assert "D4412345627" not in token
    assert crypto.key_id(token) == "t1"
    assert crypto.decrypt(token, purpose="customers.drivers_license") == "D4412345627"
    # A fresh nonce each time: equal values do not give equal ciphertexts.
    assert crypto.encrypt("D4412345627", purpose="customers.drivers_license") != token


def test_a_ciphertext_moved_to_another_purpose_or_altered_does_not_decrypt():
    token = crypto.encrypt("M-123", purpose="customers.medical_card_number")
    with pytest.raises(crypto.PiiDecryptionError):
        crypto.decrypt(token, purpose="customers.drivers_license")
    body = token.rsplit(".", 1)[1]
    altered = token[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(crypto.PiiDecryptionError):
        crypto.decrypt(altered, purpose="customers.medical_card_number")


def test_old_ciphertexts_decrypt_after_a_new_key_is_put_first(settings):
    old = crypto.encrypt("D1", purpose="p")
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY, *settings.PII_ENCRYPTION_KEYS]
    new = crypto.encrypt("D1", purpose="p")
    assert (crypto.key_id(old), crypto.key_id(new)) == ("t1", "k2")
    assert crypto.decrypt(old, purpose="p") == crypto.decrypt(new, purpose="p") == "D1"
    assert crypto.needs_rotation(old)
    assert not crypto.needs_rotation(new)
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(crypto.PiiKeyError, match="'t1'"):
        crypto.decrypt(old, purpose="p")


def test_blind_indexes_match_under_every_key_during_a_rotation(settings):
    before = crypto.blind_index("D4412345627", purpose="licence")
    assert len(before) == 32
    assert "D44" not in before
    assert crypto.blind_index("D4412345627", purpose="card") != before
    settings.PII_BLIND_INDEX_KEYS = [NEW_INDEX_KEY, *settings.PII_BLIND_INDEX_KEYS]
    after = crypto.blind_index("D4412345627", purpose="licence")
    assert after != before
    assert crypto.blind_indexes("D4412345627", purpose="licence") == (after, before)
    assert crypto.blind_index("", purpose="licence") == ""
    assert crypto.blind_indexes("", purpose="licence") == ()


@pytest.mark.parametrize(
    "entries",
    [["nokey"], ["bad id!:" + "A" * 43 + "="], ["k:" + "A" * 10], ["k:" + "A" * 43 + "=", "k:" + "B" * 43 + "="]],
)
def test_malformed_key_settings_are_refused_clearly(settings, entries):
    settings.PII_ENCRYPTION_KEYS = entries
    with pytest.raises(crypto.PiiKeyError, match="PII_ENCRYPTION_KEYS"):
        crypto.encrypt("x", purpose="p")


def test_generate_pii_key_prints_a_usable_entry(settings, capsys):
    call_command("generate_pii_key", "--id", "k2027")
    entry = capsys.readouterr().out.strip()
    settings.PII_ENCRYPTION_KEYS = [entry]
    assert crypto.key_id(crypto.encrypt("x", purpose="p")) == "k2027"
    with pytest.raises(CommandError):
        call_command("generate_pii_key", "--id", "no spaces")
