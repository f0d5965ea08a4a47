"""Who the estate's persons are: names by nationality, and the three ways agencies write them.

- passport form (work-permit `XM`): upper case `SURNAME GIVEN`, diacritics kept;
- insurance form (`AAC003`): mixed case, given names first, diacritics folded
  (`Müller` -> `Mueller`, `Groß` -> `Gross`, `Søren` -> `Soeren`, `José` -> `Jose`, `Łukasz` -> `Lukasz`);
- exit-entry form (`YWXM`): `Surname, Given Names`, natural case with diacritics.
"""

from __future__ import annotations

import random
import re
import unicodedata
from bisect import bisect
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate

from adapters.countries import ALPHA3
from estate.formats import Series

_FOLDED = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "oe", "æ": "ae", "œ": "oe",
    "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "Ø": "Oe", "Æ": "Ae", "Œ": "Oe",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i",
})  # fmt: skip


@cache
def fold(text: str) -> str:
    """The insurance agency's folding: umlauts and ß/ø spelled out, other accents stripped."""
    spelled = unicodedata.normalize("NFKD", text.translate(_FOLDED))
    return "".join(c for c in spelled if not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class Pool:
    surnames: tuple[str, ...]
    male: tuple[str, ...]
    female: tuple[str, ...]


def _pool(surnames: str, male: str, female: str) -> Pool:
    def words(text: str) -> tuple[str, ...]:
        return tuple(unicodedata.normalize("NFC", w.strip()) for w in text.split("|"))

    return Pool(words(surnames), words(male), words(female))


_POOLS: dict[str, Pool] = {
    "german": _pool(
        "Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schäfer|Koch|Groß|Weiß|Köhler|"
        "Krüger|Hoffmann|Schröder|Günther|von der Heide|Braun|Zimmermann|Jäger|Bär",
        "Hans|Jürgen|Lukas|Felix|Jörg|Matthias|Stefan|Tobias|Karl Heinz|Maximilian|Uwe|Björn",
        "Anna|Jana|Lena|Sophie|Käthe|Anna Maria|Ursula|Julia|Sabine|Hannah|Zoë|Dörte",
    ),
    "english": _pool(
        "Smith|Johnson|Williams|Brown|Jones|Taylor|Wilson|Davies|Evans|Thomas|Clarke|O'Connor|"
        "Walker|Robinson|Wright|Thompson|Hughes|Mitchell",
        "James|John|Michael|David|Robert|William|Thomas|Daniel|Christopher|Matthew|John Paul|Oliver",
        "Mary|Emma|Olivia|Sarah|Emily|Jessica|Zoë|Mary Ann|Elizabeth|Charlotte|Grace|Chloé",
    ),
    "french": _pool(
        "Martin|Bernard|Dubois|Lefèvre|Girard|Moreau|Laurent|Rousseau|Fontaine|Mercier|Lemaître|"
        "de la Fontaine|Bonnet|François",
        "Jean|Pierre|Luc|François|Jean-Pierre|Étienne|Nicolas|Julien|Benoît|Loïc",
        "Marie|Hélène|Chloé|Amélie|Élodie|Camille|Anne Sophie|Léa|Manon|Noémie",
    ),
    "iberian": _pool(
        "García|Fernández|López|Martínez|Núñez|Gonçalves|Pérez|Sánchez|Rodríguez|de la Cruz|"
        "da Silva|dos Santos|Muñoz|Ibáñez",
        "José|Juan Carlos|João|Luis|Andrés|Sebastián|Miguel Ángel|Raúl|Tomás|Iñigo",
        "María|Ana|Lucía|Inês|María José|Sofía|Beatriz|Conceição|Mónica|Ana Paula",
    ),
    "nordic": _pool(
        "Jensen|Nielsen|Hansen|Sørensen|Ødegaard|Johansson|Åberg|Lindström|Virtanen|Mäkinen|"
        "Bjørnsen|Håkansson|Andersen|Larsen",
        "Søren|Lars|Bjørn|Mikael|Jørgen|Erik|Anders|Jens|Mads|Pekka",
        "Ingrid|Astrid|Sigrid|Åsa|Märta|Freja|Kirsten|Liv|Maja|Sanna",
    ),
    "central": _pool(
        "Nowak|Kowalski|Wiśniewski|Wójcik|Dvořák|Novák|Svoboda|Łukaszewicz|Nagy|Kovács|Szabó|Zieliński",
        "Łukasz|Paweł|Piotr|Tomáš|Jiří|Krzysztof|Zoltán|Marek|Jakub|Gábor",
        "Małgorzata|Agnieszka|Zuzana|Kateřina|Anna|Éva|Zsófia|Magdalena|Tereza|Joanna",
    ),
    "east": _pool(
        "Ivanov|Smirnov|Petrov|Kuznetsov|Popov|Shevchenko|Kovalenko|Bondarenko|Sokolov|Volkov|"
        "Nurlanov|Tkachenko",
        "Ivan|Dmitry|Sergey|Alexei|Nikolai|Andrii|Mikhail|Yerlan|Oleksandr|Pavel",
        "Olga|Natalia|Elena|Anastasia|Yulia|Irina|Aigerim|Oksana|Tatiana|Svetlana",
    ),
    "japanese": _pool(
        "Tanaka|Suzuki|Sato|Takahashi|Watanabe|Ito|Yamamoto|Nakamura|Kobayashi|Ōtsuka|Kato|Yoshida",
        "Hiroshi|Takeshi|Kenji|Yuki|Daisuke|Shota|Haruto|Kaito|Ryo|Takumi",
        "Haruka|Sakura|Aiko|Yui|Misaki|Nanami|Yuna|Emi|Mai|Rina",
    ),
    "korean": _pool(
        "Kim|Lee|Park|Choi|Jung|Kang|Cho|Yoon|Jang|Lim|Han|Oh",
        "Min Jun|Ji Ho|Seo Jun|Hyun Woo|Dong Hyun|Jae Won|Sung Min|Tae Yang",
        "Seo Yeon|Ji Woo|Ha Eun|Min Seo|Soo Ah|Ye Jin|Eun Ji|Da Eun",
    ),
    "southeast": _pool(
        "Nguyen|Tran|Le|Pham|Santoso|Wijaya|Tan|Lim|Reyes|Santos|Cruz|Suksawat|Chaiyaporn|Rahman",
        "Van Anh|Minh|Budi|Agus|Somchai|Wei Ming|Jose Miguel|Ahmad|Arif|Duc Thanh",
        "Thi Lan|Siti|Maria Clara|Wei Ling|Nurul|Ploy|Dewi|Kim Chi|Angelica|Ayu",
    ),
    "south": _pool(
        "Sharma|Patel|Singh|Kumar|Gupta|Khan|Reddy|Iyer|Nair|Chaudhry|Qureshi|Mehta",
        "Rahul|Amit|Arjun|Vikram|Mohammed Ali|Sanjay|Imran|Ravi|Anil|Karan",
        "Priya|Anjali|Sunita|Aisha|Deepika|Kavya|Fatima|Neha|Pooja|Sana",
    ),
    "mediterranean": _pool(
        "Rossi|Russo|Bianchi|Ricci|Esposito|De Luca|Yılmaz|Kaya|Demir|Şahin|Çelik|Öztürk|"
        "Papadopoulos|Georgiou|Hassan|Ibrahim",
        "Marco|Giovanni|Luca|Mehmet|Emre|Burak|Nikolaos|Giorgos|Ahmed|Omar",
        "Giulia|Francesca|Chiara|Ayşe|Elif|Zeynep|Eleni|Maria|Fatma|Nour",
    ),
    "dutch": _pool(
        "de Vries|van der Berg|Jansen|Bakker|van Dijk|Visser|Smit|de Jong|Peeters|Janssens",
        "Daan|Sem|Pieter|Joris|Thijs|Jan Willem|Bram|Wouter",
        "Sanne|Femke|Anouk|Lotte|Iris|Anne Fleur|Noor|Eva",
    ),
    "african": _pool(
        "Okafor|Adeyemi|Odhiambo|Mwangi|Okonkwo|Otieno|Balogun|Kamau|Nkosi|Dlamini",
        "Chinedu|Oluwaseun|Emeka|Kwame|Tunde|Brian|Sipho|Kofi",
        "Ngozi|Wanjiru|Amara|Chiamaka|Akinyi|Thandiwe|Folake|Zanele",
    ),
}  # fmt: skip

_POOL_OF: dict[str, str] = {
    **dict.fromkeys(("DEU", "AUT", "CHE"), "german"),
    **dict.fromkeys(("USA", "GBR", "CAN", "AUS", "NZL", "IRL"), "english"),
    **dict.fromkeys(("FRA", "BEL"), "french"),
    **dict.fromkeys(("ESP", "MEX", "PRT", "BRA"), "iberian"),
    **dict.fromkeys(("DNK", "NOR", "SWE", "FIN", "ISL"), "nordic"),
    **dict.fromkeys(("POL", "CZE", "HUN"), "central"),
    **dict.fromkeys(("RUS", "UKR", "KAZ", "MNG"), "east"),
    "JPN": "japanese",
    "KOR": "korean",
    **dict.fromkeys(("VNM", "IDN", "MYS", "PHL", "THA", "SGP"), "southeast"),
    **dict.fromkeys(("IND", "PAK"), "south"),
    **dict.fromkeys(("ITA", "TUR", "GRC", "EGY"), "mediterranean"),
    "NLD": "dutch",
    **dict.fromkeys(("NGA", "KEN", "ZAF"), "african"),
}

# The workforce leans on a handful of countries; every other country of the list is rarer.
_FAVOURED = {"USA": 14, "GBR": 9, "DEU": 9, "FRA": 7, "JPN": 8, "KOR": 8, "RUS": 6, "IND": 6,
             "CAN": 5, "AUS": 5}  # fmt: skip
NATIONALITIES: tuple[str, ...] = tuple(sorted(ALPHA3))
NATIONALITY_CUMULATIVE: tuple[float, ...] = tuple(accumulate(_FAVOURED.get(a, 0.8) for a in NATIONALITIES))


@dataclass(frozen=True, slots=True)
class Name:
    surname: str
    given: str  # "" for a single-name person

    @property
    def passport_form(self) -> str:
        return f"{self.surname} {self.given}".strip().upper()

    @property
    def insurance_form(self) -> str:
        return fold(f"{self.given} {self.surname}".strip())

    @property
    def exit_entry_form(self) -> str:
        return f"{self.surname}, {self.given}" if self.given else self.surname


def draw_name(rng: random.Random, nationality: str, sex: str, single_name: bool) -> Name:
    pool = _POOLS[_POOL_OF.get(nationality, "english")]
    surname = rng.choice(pool.surnames)
    if sex == "F" and nationality in ("RUS", "UKR", "KAZ") and surname.endswith(("ov", "ev", "in")):
        surname += "a"
    elif sex == "F" and nationality == "POL" and surname.endswith("ski"):
        surname = surname[:-1] + "a"
    if single_name:
        return Name(surname, "")
    return Name(surname, rng.choice(pool.male if sex == "M" else pool.female))


# Passport numbers: a country-styled prefix and eight digits of one distinct series.
_PASSPORT_PREFIXES = {"USA": "56", "GBR": "12", "AUS": "PRN", "CAN": "ACG", "DEU": "C", "FRA": "E",
                      "JPN": "T", "KOR": "M", "RUS": "7", "IND": "JKLMNPRTVZ"}  # fmt: skip


def passport_number(rng: random.Random, nationality: str, digits: str) -> str:
    prefix = rng.choice(_PASSPORT_PREFIXES.get(nationality, "EGHKNPX"))
    if nationality == "JPN":
        prefix += rng.choice("KRZ")
    return prefix + digits


@dataclass(slots=True)
class Person:
    sqrid: int
    name: Name
    sex: str  # "M" / "F"
    birth: int  # ordinal
    nationality: str  # alpha-3
    passports: list[tuple[str, int, int]] = field(default_factory=list)  # number, from, to; oldest first

    @property
    def passport(self) -> str:
        return self.passports[-1][0]

    def passport_on(self, day: int) -> str:
        return next((n for n, start, end in self.passports if start <= day <= end), self.passport)


class Population:
    """Draws persons whose folded name and birth date never repeat (so the only persons who
    look alike are the deliberate weak cases) and whose passport numbers never collide."""

    def __init__(self, rng: random.Random, today: int) -> None:
        self.rng = rng
        self.t = today
        self.passport_digits = Series(rng, 8)
        self._seen: set[tuple[str, int]] = set()

    def draw(self, sqrid: int, nationality: str | None = None, min_age: int = 22, max_age: int = 62,
             surname: str | None = None) -> Person:  # fmt: skip
        rng = self.rng
        if nationality is None:
            nationality = NATIONALITIES[
                bisect(NATIONALITY_CUMULATIVE, rng.random() * NATIONALITY_CUMULATIVE[-1])
            ]
        sex = "M" if rng.random() < 0.6 else "F"
        single = rng.random() < (0.3 if nationality == "IDN" else 0.02)
        name = draw_name(rng, nationality, sex, single)
        if surname is not None:
            name = Name(surname, name.given)
        key = " ".join(
            sorted(re.findall(r"[A-Z0-9]+", fold(name.passport_form).upper()))
        )  # words in any order
        while True:
            birth = self.t - min_age * 365 - int(rng.random() * (max_age - min_age) * 365)
            if (key, birth) not in self._seen:
                self._seen.add((key, birth))
                return Person(sqrid, name, sex, birth, nationality)

    def new_passport(self, person: Person) -> str:
        return passport_number(self.rng, person.nationality, self.passport_digits.next())

    def issue_passports(self, person: Person, first_use: int, renewal: int | None) -> None:
        """The current passport, and the one it replaced at `renewal` if the person renewed."""
        u = self.rng.randint
        issued = min(self.t - u(200, 3300), first_use - u(30, 400))
        if renewal is not None:
            person.passports.append((self.new_passport(person), issued, renewal - 1))
            issued = renewal
        person.passports.append((self.new_passport(person), issued, issued + 3651))
