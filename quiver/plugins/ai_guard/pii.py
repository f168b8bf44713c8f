"""Finding personal data in text: e-mail addresses, phone numbers, payment card
numbers (Luhn-checked), IBANs (ISO 13616 mod-97 checked) and API-key shapes.

Each kind is a pattern and, where the format has one, a checksum: a candidate
that fails its checksum is not reported, so order numbers and dates are left
alone.  Kinds are looked for in a fixed order on the original text and a later
kind never takes a span an earlier one took (an API key holding digits is one
API key, not a phone number).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Entity = Literal["api_key", "email", "iban", "card", "phone"]
#: the order kinds are looked for in
ENTITIES: tuple[Entity, ...] = ("api_key", "email", "iban", "card", "phone")
DEFAULT_MASKS: dict[Entity, str] = {
    "api_key": "[API_KEY]",
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARD]",
    "phone": "[PHONE]",
}

_API_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"sk-[A-Za-z0-9_-]{20,}"  # OpenAI (sk-..., sk-proj-...), Anthropic (sk-ant-...)
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r")(?![\w-])"
)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# grouped by four (the printed form) or written in one piece
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?"
    r"(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d])")
_PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+\d{7,15}"  # E.164 in one piece
    r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,8}(?:[ .-]\d{1,8}){0,6}"
    r")(?![\w-]|\.\d)"
)
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def luhn(digits: str) -> bool:
    """The Luhn checksum of a card number (ISO/IEC 7812-1) holds."""
    total = 0
    for place, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if place % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """The ISO 13616 check digits of an IBAN hold (mod 97 of the rearranged number
    is 1), for 15 to 34 characters."""
    iban = text.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _card(found: str) -> bool:
    digits = found.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn(digits)


def _phone(found: str) -> bool:
    digits = sum(char.isdigit() for char in found)
    if not 9 <= digits <= 15:
        return False
    if "." in found and (
        _DOTTED_QUAD.fullmatch(found) or any(len(group) < 2 for group in found.split("."))
    ):
        return False  # an IPv4 address, a version number
    # a bare run of digits is an id more often than a number to call
    return found.startswith("+") or any(char in found for char in " .-()")


@dataclass(frozen=True, slots=True)
class Detector:
    kind: Entity
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None


DETECTORS: dict[Entity, Detector] = {
    "api_key": Detector("api_key", _API_KEY),
    "email": Detector("email", _EMAIL),
    "iban": Detector("iban", _IBAN, iban_valid),
    "card": Detector("card", _CARD, _card),
    "phone": Detector("phone", _PHONE, _phone),
}


class Finder:
    """The detectors of one config, with the mask each kind is replaced by."""

    __slots__ = ("detectors", "masks")

    def __init__(self, kinds: Iterable[Entity], masks: Mapping[Entity, str]) -> None:
        wanted = set(kinds)
        self.detectors = tuple(DETECTORS[kind] for kind in ENTITIES if kind in wanted)
        self.masks = {**DEFAULT_MASKS, **masks}

    def spans(self, text: str) -> list[tuple[int, int, Entity]]:
        """The personal data in ``text``: (start, end, kind), in order, never overlapping."""
        taken: list[tuple[int, int, Entity]] = []
        for detector in self.detectors:
            check = detector.check
            for match in detector.pattern.finditer(text):
                start, end = match.span()
                if check is not None and not check(match.group()):
                    continue
                if any(start < stop and begin < end for begin, stop, _ in taken):
                    continue
                taken.append((start, end, detector.kind))
        taken.sort()
        return taken

    def mask(self, text: str) -> tuple[str, list[Entity]]:
        """``text`` with each piece of personal data replaced by its mask, and the
        kinds found (in order, repeated as found)."""
        spans = self.spans(text)
        if not spans:
            return text, []
        parts: list[str] = []
        at = 0
        for start, end, kind in spans:
            parts += (text[at:start], self.masks[kind])
            at = end
        parts.append(text[at:])
        return "".join(parts), [kind for _, _, kind in spans]
