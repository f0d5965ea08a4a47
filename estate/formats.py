"""Dates in the agencies' spellings and the number series the estate hands out.

Dates travel through the generator as proleptic ordinals (`date.toordinal()`), which are
cheap to add to and compare; they are spelled out only when a row is written, through
small caches. Every number series is a bijection of a running counter, so numbers look
scattered yet can never collide, without keeping a set of the numbers already given.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache
from typing import Any

from adapters.identifiers import credit_code_check_character, social_security_check_character

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows to insert, in order
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@cache
def _date(ordinal: int) -> date:
    return date.fromordinal(ordinal)


@cache
def ymd(ordinal: int) -> str:
    """`YYYYMMDD` (work-permit system)."""
    return _date(ordinal).strftime("%Y%m%d")


@cache
def iso(ordinal: int) -> str:
    """`YYYY-MM-DD` (card service, BEIJING PASS)."""
    return _date(ordinal).isoformat()


@cache
def slashed(ordinal: int) -> str:
    """`YYYY/MM/DD` (exit-entry)."""
    return _date(ordinal).strftime("%Y/%m/%d")


def ymd_int(ordinal: int) -> int:
    """Integer `YYYYMMDD` (social insurance)."""
    return int(ymd(ordinal))


def year(ordinal: int) -> str:
    return ymd(ordinal)[:4]


def timestamp(ordinal: int, seconds: int) -> str:
    """RFC 3339 in Beijing time, `seconds` after midnight."""
    hours, rest = divmod(seconds, 3600)
    return f"{iso(ordinal)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}+08:00"


class Series:
    """Distinct `width`-digit numbers: counter k maps to (k * step + offset) mod 10^width.

    The step is odd and not a multiple of 5, so it is coprime with 10^width and the map is a
    bijection; the offset comes from the seed, so another seed gives other numbers.
    """

    __slots__ = ("_modulus", "_offset", "_step", "_width", "issued")

    def __init__(self, rng: random.Random, width: int) -> None:
        self._width = width
        self._modulus = 10**width
        self._step = 7_654_321 if width >= 7 else 7_919
        self._offset = rng.randrange(self._modulus)
        self.issued = 0

    def next(self) -> str:
        k = self.issued
        self.issued += 1
        if self.issued > self._modulus:
            raise OverflowError(f"a {self._width}-digit series ran out of numbers")
        return f"{(k * self._step + self._offset) % self._modulus:0{self._width}d}"


def credit_code(rng: random.Random, division: str) -> str:
    """A Unified Social Credit Code of an enterprise (`91`) registered in `division`."""
    body = "91" + division + "".join(rng.choices(USCC_ALPHABET, k=9))
    return body + credit_code_check_character(body)


class SocialSecurityNumbers:
    """`AAC002`: nationality, insuring district, birth `YYMMDD`, sequence, check character."""

    __slots__ = ("_sequences",)

    def __init__(self) -> None:
        self._sequences: dict[str, int] = {}

    def next(self, nationality: str, district: str, birth: int) -> str:
        prefix = nationality + district + ymd(birth)[2:]
        sequence = self._sequences.get(prefix, 0) + 1
        if sequence > 99:
            raise OverflowError(f"more than 99 social security numbers for {prefix}")
        self._sequences[prefix] = sequence
        first17 = f"{prefix}{sequence:02d}"
        return first17 + social_security_check_character(first17)


# A digit misread as a letter: a passport number that cannot be any generated one (their
# last eight characters are always digits).
_LOOKALIKE = str.maketrans("0123456789", "OIZEASGTBP")


def mistyped(passport: str, position: int) -> str:
    """The passport number with one of its last eight digits misread as a letter."""
    index = len(passport) - 1 - position % 8
    return passport[:index] + passport[index].translate(_LOOKALIKE) + passport[index + 1 :]
