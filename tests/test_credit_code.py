"""Unified social credit codes (GB 32100-2015) with the organisation-code check (GB 11714).

Every expectation below is worked out by hand from the standards' tables:
credit alphabet 0-9 = 0-9, A10 B11 C12 D13 E14 F15 G16 H17 J18 K19 L20 M21 N22 P23 Q24
R25 T26 U27 W28 X29 Y30; weights 3^(i-1) mod 31 = 1 3 9 27 19 26 16 17 20 29 25 13 8 24
10 30 28; check = 31 - (sum mod 31), 31 → 0. Organisation code: letters A=10 … Z=35,
weights 3 7 9 10 5 8 4 2, check = 11 - (sum mod 11), 10 → X, 11 → 0.
"""

from __future__ import annotations

import asyncpg
import pytest

from aqi_service.disclosure import credit_code as cc

# 91350100M000100Y43, the example published with GB 32100:
#   code sum 9·1 + 1·3 + 3·9 + 5·27 + 0·19 + 1·26 + 0·16 + 0·17 + M(21)·20 + 0·29 + 0·25
#   + 0·13 + 1·8 + 0·24 + 0·10 + Y(30)·30 + 4·28 = 1640; 1640 mod 31 = 28; 31 - 28 = 3.
#   org M000100Y: M(22)·3 + 1·5 + Y(34)·2 = 139; 139 mod 11 = 7; 11 - 7 = 4.
PUBLISHED = "91350100M000100Y43"
# 91110000 + 12345678: org sum 1·3+2·7+3·9+4·10+5·5+6·8+7·4+8·2 = 201, 201 mod 11 = 3,
#   check 8; code sum 9+3+9+27 + 1·20+2·29+3·25+4·13+5·8+6·24+7·10+8·30+8·28 = 971,
#   971 mod 31 = 10, 31 - 10 = 21 → M.
DIGITS = "91110000123456788M"
# org 00000006: 6·2 = 12, 12 mod 11 = 1, 11 - 1 = 10 → X; code sum 9+3+9+27 + 6·30 +
#   X(29)·28 = 1040, 1040 mod 31 = 17, 31 - 17 = 14 → E.
ORG_X = "9111000000000006XE"
# org 00000000: sum 0, 11 - 0 = 11 → 0; code sum 9+3+9+27 = 48, 48 mod 31 = 17 → 14 → E.
ORG_ZERO = "91110000" + "00000000" + "0" + "E"
# the published example with the organisation check 5 instead of 4: the code check is
#   recomputed as 1640 - 4·28 + 5·28 = 1668, 1668 mod 31 = 25, 31 - 25 = 6 → the code's own
#   check passes, the organisation code's fails.
ORG_WRONG = "91350100M000100Y56"


@pytest.mark.parametrize("code", [PUBLISHED, DIGITS, ORG_X, ORG_ZERO])
def test_valid_codes(code: str) -> None:
    assert cc.parse(code).code == code
    assert cc.is_valid(code)


def test_parts_of_a_code() -> None:
    parsed = cc.parse(PUBLISHED)
    assert (parsed.authority, parsed.entity_type, parsed.division,
            parsed.organisation_code) == ("9", "1", "350100", "M000100Y4")


def test_spaces_and_lower_case_are_accepted() -> None:
    assert cc.parse(" 91350100m000100y43 ").code == PUBLISHED


@pytest.mark.parametrize(("code", "reason"), [
    ("91350100M000100Y44", "check character is '4', expected '3'"),
    ("91110000123456788N", "expected 'M'"),
    (ORG_WRONG, "organisation code M000100Y-5"),
    ("91350100M000100Y4", "18 characters"),
    ("91350100M000100Y433", "18 characters"),
    ("91350100I000100Y43", "'I'"),
    ("91350100O000100Y43", "'O'"),
    ("91350100S000100Y43", "'S'"),
    ("91350100V000100Y43", "'V'"),
    ("91350100Z000100Y43", "'Z'"),
    ("9135A100M000100Y43", "administrative division"),
    ("B1350100M000100Y43", "registration authority"),
    ("90350100M000100Y43", "entity type 0"),
    ("９１３５０１００Ｍ０００１００Ｙ４３", "not allowed"),
    ("", "18 characters"),
])
def test_invalid_codes_say_why(code: str, reason: str) -> None:
    with pytest.raises(cc.CreditCodeError, match=reason.replace("(", r"\(")):
        cc.parse(code)
    assert not cc.is_valid(code)


def test_the_organisation_check_can_be_left_out() -> None:
    assert cc.is_valid(ORG_WRONG, check_org_code=False)
    assert not cc.is_valid(ORG_WRONG)


def test_check_characters_by_hand() -> None:
    assert cc.check_character("91350100M000100Y4") == "3"
    assert cc.org_check_character("M000100Y") == "4"
    assert cc.org_check_character("00000006") == "X"
    assert cc.org_check_character("00000000") == "0"


@pytest.mark.db
async def test_the_database_enforces_the_code_check(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for code in (PUBLISHED, DIGITS, ORG_X, ORG_ZERO, ORG_WRONG):
            assert await conn.fetchval("SELECT credit_code_valid($1)", code) is True
        for code in ("91350100M000100Y44", "91350100I000100Y43", "9135A100M000100Y43",
                     "91350100m000100y43", "91350100M000100Y4"):
            assert await conn.fetchval("SELECT credit_code_valid($1)", code) is False
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO enterprises (credit_code, name_zh, county_code) "
                               "VALUES ('91350100M000100Y44', 'x', 'anci')")
