"""Phone-number normalisation: everything Loopline stores as an SMS address is E.164 when it can be.

Twilio sends ``From`` in E.164 already, but staff type numbers in national format ("07700 900123") and
the CLI simulator takes whatever is typed. Normalising both sides means one resident is one address.

Addresses that are not phone numbers are returned stripped but otherwise unchanged, so they stay
distinct and never collide with a real number:

* alphanumeric sender ids ("Twilio", "CouncilTax"), URIs such as "tel:+44..." or "whatsapp:+44...";
* short codes ("81234", "60123"): phonenumbers calls these only "possible locally", and prefixing
  them with a country code would invent a number that does not exist.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

# Digits with the punctuation people type; anything else (letters, "tel:", "whatsapp:") is not a
# number we should rewrite. phonenumbers itself would happily read "whatsapp:+447700900123".
_LOOKS_NUMERIC = re.compile(r"\+?[0-9 ().\-]*[0-9][0-9 ().\-]*")


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    text = raw.strip()
    if not _LOOKS_NUMERIC.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY is what short codes and local-only fragments get.
    # We deliberately do not require is_valid_number: Ofcom's drama range (+447700900xxx) and newly
    # allocated ranges are "possible" but not "valid" in the metadata.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    return number


def normalise_phone(raw: str, region: str = "GB") -> str:
    """Return ``raw`` as E.164 ("07700 900123" -> "+447700900123").

    If ``raw`` cannot be read as a possible full phone number (short code, alphanumeric sender,
    URI, junk) the stripped input is returned unchanged.
    """
    number = _parse(raw, region)
    if number is None:
        return raw.strip()
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_phone_number(raw: str, region: str = "GB") -> bool:
    """True if ``raw`` reads as a possible full phone number (what :func:`normalise_phone` rewrites)."""
    return _parse(raw, region) is not None
