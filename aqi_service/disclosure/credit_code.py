"""Unified social credit codes (统一社会信用代码, GB 32100-2015) and their check characters.

The 18 characters are: registration authority (1), entity type (1), administrative
division (6 digits), the entity's organisation code (9, GB 11714-1997: 8 characters and a
check character) and the check character of the whole code. The alphabet is the digits and
the capital letters without I, O, S, V and Z, valued 0-30 in order.

* Code check (GB 32100 §4.2): C18 = 31 - (Σ value(Ci) · 3^(i-1) mod 31), 31 written as 0;
  the weights 3^(i-1) mod 31 are 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28.
* Organisation-code check (GB 11714 §5): over the first 8 characters (digits 0-9, letters
  A-Z valued 10-35), C9 = 11 - (Σ value · w mod 11) with w = 3 7 9 10 5 8 4 2; 10 is
  written X and 11 is written 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aqi_service.errors import InputError

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
AUTHORITIES = frozenset("123456789ANY")
"""Registration authorities of GB 32100 (1 机构编制 … 9 工商, A 军队, N 农业, Y 其他)."""

_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")


class CreditCodeError(InputError):
    """A string that is not a valid unified social credit code."""


@dataclass(frozen=True, slots=True)
class CreditCode:
    """A validated code and its parts."""

    code: str

    @property
    def authority(self) -> str:
        """Registration authority (position 1)."""
        return self.code[0]

    @property
    def entity_type(self) -> str:
        """Entity type (position 2)."""
        return self.code[1]

    @property
    def division(self) -> str:
        """Administrative division of registration (positions 3-8)."""
        return self.code[2:8]

    @property
    def organisation_code(self) -> str:
        """The organisation code (positions 9-17), written ``XXXXXXXX-X`` on certificates."""
        return self.code[8:17]


def check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    if len(first17) != 17 or any(c not in ALPHABET for c in first17):
        raise CreditCodeError(f"{first17!r}: need 17 characters of {ALPHABET}")
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, CODE_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_check_character(first8: str) -> str:
    """The GB 11714 check character of an organisation code's first 8 characters."""
    if len(first8) != 8 or any(c not in ORG_ALPHABET for c in first8):
        raise CreditCodeError(f"{first8!r}: need 8 digits or capital letters")
    total = sum(ORG_ALPHABET.index(c) * w for c, w in zip(first8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def parse(raw: str, *, check_org_code: bool = True) -> CreditCode:
    """Validate a code (surrounding spaces ignored, lower case accepted); say what is wrong."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise CreditCodeError(f"must be 18 characters, got {len(code)}")
    bad = sorted({c for c in code if c not in ALPHABET})
    if bad:
        raise CreditCodeError(
            f"characters {''.join(bad)!r} are not allowed (digits and capital letters "
            "except I, O, S, V, Z)")
    if not _SHAPE.match(code):
        raise CreditCodeError("positions 3-8 (administrative division) must be digits")
    if code[0] not in AUTHORITIES:
        raise CreditCodeError(f"unknown registration authority {code[0]!r}")
    if code[1] == "0":
        raise CreditCodeError("entity type 0 does not exist")
    expected = check_character(code[:17])
    if code[17] != expected:
        raise CreditCodeError(f"check character is {code[17]!r}, expected {expected!r}")
    if check_org_code:
        org_expected = org_check_character(code[8:16])
        if code[16] != org_expected:
            raise CreditCodeError(
                f"organisation code {code[8:16]}-{code[16]}: check character is "
                f"{code[16]!r}, expected {org_expected!r}")
    return CreditCode(code)


def is_valid(raw: str, *, check_org_code: bool = True) -> bool:
    """True when ``raw`` is a valid code."""
    try:
        parse(raw, check_org_code=check_org_code)
    except CreditCodeError:
        return False
    return True


def build(authority: str, entity_type: str, division: str, org_body: str) -> str:
    """A complete code from its parts: both check characters are computed."""
    org = org_body + org_check_character(org_body)
    first17 = authority + entity_type + division + org
    return first17 + check_character(first17)
