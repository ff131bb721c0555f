"""How many SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67 per part)."""

from __future__ import annotations

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")  # each costs two characters


def is_gsm(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def segments(text: str) -> int:
    """Segments Twilio bills for ``text`` (an empty text still costs one).

    A character that takes two units (a GSM extension character, or an astral character in UCS-2) is
    never split between two parts, so parts are filled one character at a time.
    """
    gsm = is_gsm(text)
    costs = (
        [2 if ch in GSM_EXTENSION else 1 for ch in text]
        if gsm
        else [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    )
    single, part = (160, 153) if gsm else (70, 67)
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts
