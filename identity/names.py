"""Name comparison across agencies (DOMAIN.md: Unicode NFKD without accents, and also
ä/ö/ü/ß/ø as ae/oe/ue/ss/oe; upper case; punctuation dropped; words in any order)."""

from __future__ import annotations

import re
import unicodedata

# DOMAIN.md's spelled-out letters, plus the letters NFKD cannot take apart (ł, đ, æ, œ, þ),
# which the social insurance agency folds by hand as well.
_SPELLED_OUT = str.maketrans(
    {
        "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "oe",
        "Ä": "AE", "Ö": "OE", "Ü": "UE", "ẞ": "SS", "Ø": "OE",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae",
        "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH",
    }
)  # fmt: skip
_NOT_A_LETTER = re.compile(r"[^A-Z0-9]+")


def name_words(name: str) -> tuple[str, ...]:
    """The words of a name, normalised and sorted, so that two spellings compare equal.

    >>> name_words("Müller, Hans") == name_words("HANS MUELLER")
    True
    """
    spelled = name.translate(_SPELLED_OUT)
    stripped = "".join(c for c in unicodedata.normalize("NFKD", spelled) if not unicodedata.combining(c))
    return tuple(sorted(w for w in _NOT_A_LETTER.split(stripped.upper()) if w))


def split_upper_name(name: str) -> tuple[str, str | None]:
    """`SURNAME GIVEN` as the work-permit system stores it: the first word is taken as the
    surname (a multi-word surname cannot be told apart there)."""
    surname, _, given = " ".join(name.split()).partition(" ")
    return surname, given or None


def normalise_passport(number: str) -> str:
    return re.sub(r"[\s-]", "", number).upper()


def fold_diacritics(name: str) -> str:
    """A name as the social insurance agency stores it: letters spelled out (Müller ->
    Mueller), other accents dropped, case kept."""
    spelled = name.translate(_SPELLED_OUT)
    return "".join(c for c in unicodedata.normalize("NFKD", spelled) if not unicodedata.combining(c))
