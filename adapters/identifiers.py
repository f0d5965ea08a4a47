"""Identifier formats and check characters (DOMAIN.md, "Identifier formats").

Used by the adapters to flag legacy rows, by the seed to make valid ones, and by the
workflows to validate input.
"""

from __future__ import annotations

import re

# GB 32100-2015: 31 characters (no I, O, Z, S, V), weights 3^i mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_FORMAT = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")

# Foreign social security number: the citizen-ID rule with letters valued 10-35.
_SSN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SSN_CHECK = "10X98765432"
_SSN_FORMAT = re.compile(r"^[A-Z]{3}\d{6}\d{6}\d{2}[0-9X]$")

PERMIT_NUMBER = re.compile(r"^\d{6}\d{4}\d{8}$")
NOTIFICATION_LETTER_NUMBER = re.compile(r"^TZ\d{4}\d{7}$")
CARD_NUMBER = re.compile(r"^[A-Z]\d{8}$")
ELECTRONIC_CARD_ID = re.compile(r"^DZK\d{9}$")
VISA_NUMBER = re.compile(r"^V\d{8}$")
RESIDENCE_PERMIT_NUMBER = re.compile(r"^E\d{8}$")
DISTRICT_CODE = re.compile(r"^\d{6}$")


def credit_code_check_character(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    """GB 32100 Unified Social Credit Code: format and check character.

    >>> is_valid_credit_code("91110000600037341L")
    True
    """
    return bool(_USCC_FORMAT.match(code)) and credit_code_check_character(code[:17]) == code[17]


def _ssn_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def social_security_check_character(first17: str) -> str:
    total = sum(_ssn_value(c) * w for c, w in zip(first17, _SSN_WEIGHTS, strict=True))
    return _SSN_CHECK[total % 11]


def is_valid_social_security_number(number: str) -> bool:
    return bool(_SSN_FORMAT.match(number)) and social_security_check_character(number[:17]) == number[17]
