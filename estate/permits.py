"""The work-permit system's story of one person: permit periods, their business records, and
the employers they name. Dates are ordinals relative to the estate's `as_of` (`t`)."""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate

from estate.formats import Rows, Series, credit_code, ymd
from estate.people import Person

DISTRICTS = tuple("110101 110102 110105 110106 110107 110108 110111 110112 110113 110114 110115".split())
_DISTRICT_WEIGHTS = tuple(accumulate((8, 6, 25, 5, 3, 22, 2, 6, 8, 7, 8)))
LEGACY_CUTOFF = date(2024, 12, 1).toordinal()  # periods started before it may carry a physical card
ACTIVATED = ("30", "40", "50")

# Status of the current period; "3P" is a valid (30) period whose end has passed.
_STATUSES = ("30", "3P", "50", "40", "10", "20", "60")
_STATUS_CUMULATIVE = tuple(accumulate((0.60, 0.02, 0.08, 0.05, 0.10, 0.08, 0.07)))
_POSITIONS = tuple(
    "Engineer|Software Engineer|English Teacher|Teacher|Consultant|Sales Manager|Chef|Designer|Researcher|"
    "Financial Analyst|General Manager|Product Manager|Marketing Director|Architect|Physician".split("|")
)
_CANCEL_REASONS = tuple(
    "Employment contract terminated|Resigned from the employer|Employer deregistered|Left China permanently|"
    "Cancelled at the holder's request".split("|")
)
_REJECT_REASONS = tuple(
    "Degree certificate not authenticated|Insufficient work experience|Employer qualification not verified|"
    "Criminal record certificate missing|Position does not match the talent category".split("|")
)
_NAME_PARTS = tuple(
    "Hua Jing Zhong Tian Xin Bei Yuan Hong Da Kang Rui Feng Sheng Tai Long Ming Heng An Cheng Guo".split()
)
_TRADES = tuple(
    "Technology|Education|Consulting|Trading|Software|Pharmaceutical|Culture Media|Engineering|Logistics|"
    "Hospitality".split("|")
)

Event = tuple[str, int, int | None, str, str]  # YWLX, SQRQ, BJRQ (None while pending), JG, BZ


@dataclass(frozen=True, slots=True)
class Employer:
    number: int  # AB01.AAB001
    name: str
    code: str
    district: str


def make_employers(rng: random.Random, count: int) -> tuple[list[Employer], list[float]]:
    """Employers with distinct names and credit codes, and cumulative weights (a few big ones)."""
    combos = len(_NAME_PARTS) ** 2 * len(_TRADES)
    picks = rng.sample(range(combos), min(count, combos))
    employers: list[Employer] = []
    codes: set[str] = set()
    for n in range(count):
        k = picks[n % len(picks)]
        first, rest = divmod(k, len(_NAME_PARTS) * len(_TRADES))
        second, trade = divmod(rest, len(_TRADES))
        branch = f" Branch {n // len(picks)}" if n >= len(picks) else ""
        name = f"Beijing {_NAME_PARTS[first]}{_NAME_PARTS[second].lower()} {_TRADES[trade]} Co., Ltd.{branch}"
        district = draw_district(rng)
        code = credit_code(rng, district)
        while code in codes:
            code = credit_code(rng, district)
        codes.add(code)
        employers.append(Employer(n + 1, name, code, district))
    return employers, list(accumulate(1 / (n + 3) for n in range(count)))


def draw_district(rng: random.Random) -> str:
    return DISTRICTS[bisect(_DISTRICT_WEIGHTS, rng.random() * _DISTRICT_WEIGHTS[-1])]


@dataclass(slots=True)
class Period:
    status: str
    employer: Employer
    district: str
    position: str
    rclb: str
    applied: int
    letter_date: int | None = None
    start: int | None = None
    end: int | None = None
    ended: int | None = None  # cancellation date (40)
    letter: str = ""
    stz: str = "0"
    extended: tuple[int, int] | None = None  # (end before the extension, date it was granted)
    events: list[Event] = field(default_factory=list)

    @property
    def last_decision(self) -> int:
        return max(e[2] for e in self.events if e[2] is not None)


class PermitOffice:
    """Draws permit periods; `rng` is its own, so the other agencies' draws never shift them."""

    def __init__(
        self, rng: random.Random, today: int, employers: list[Employer], weights: list[float]
    ) -> None:
        self.rng = rng
        self.t = today
        self.employers = employers
        self.weights = weights
        self.letters = Series(rng, 7)
        self.sequences = Series(rng, 8)

    def _u(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1))

    def _duration(self) -> int:
        r = self.rng.random()
        return 365 if r < 0.4 else 730 if r < 0.75 else 1095

    def _period(self, status: str, applied: int) -> Period:
        rng = self.rng
        employer = self.employers[bisect(self.weights, rng.random() * self.weights[-1])]
        district = employer.district if rng.random() < 0.7 else draw_district(rng)
        r = rng.random()
        rclb = "A" if r < 0.15 else "B" if r < 0.8 else "C"
        return Period(status, employer, district, rng.choice(_POSITIONS), rclb, applied)

    def story(self) -> tuple[str, list[Period]]:
        """The permit number and the periods of one person, oldest first."""
        rng, t, u = self.rng, self.t, self._u
        status = _STATUSES[bisect(_STATUS_CUMULATIVE, rng.random() * _STATUS_CUMULATIVE[-1])]
        d = self._duration()
        if status == "30":
            r = rng.random()
            end = t + (u(0, 30) if r < 0.05 else u(31, 90) if r < 0.13 else u(91, d - 30))
            current = self._activated("30", end - d + 1, end, None)
        elif status in ("3P", "50"):
            end = t - (u(1, 45) if status == "3P" else u(1, 700))
            current = self._activated(status[0] + "0", end - d + 1, end, None)
        elif status == "40":
            start = t - u(60, 900)
            current = self._activated(
                "40", start, start + d - 1, start + u(30, min(start + d - 1, t) - start)
            )
        elif status == "20":
            letter_date = t - u(1, 80)
            current = self._period("20", letter_date - u(5, 30))
            current.letter_date, current.start = letter_date, t + u(0, 45)
            current.end = current.start + d - 1
            current.events += [
                ("XB", current.applied, letter_date, "1", ""),
                ("TZ", letter_date, letter_date, "1", ""),
            ]
        elif status == "10":
            current = self._period("10", t - u(0, 40))
            current.events.append(("XB", current.applied, None, "0", ""))
        else:
            current = self._period("60", t - u(15, 500))
            decided = min(current.applied + u(5, 30), t)
            current.events += [
                ("XB", current.applied, decided, "2", ""),
                ("BH", decided, decided, "2", rng.choice(_REJECT_REASONS)),
            ]
        periods = [current]
        if rng.random() < 0.10:  # an older period, expired or cancelled, under the same number
            limit = current.applied - 1
            if rng.random() < 0.6:
                end = limit - u(1, 120)
                periods.insert(0, self._activated("50", end - d + 1, end, None))
            else:
                cancelled = limit - u(1, 90)
                start = cancelled - u(30, 700)
                periods.insert(0, self._activated("40", start, start + 729, cancelled))
        for period in periods:
            if period.letter_date is not None:
                period.letter = f"TZ{ymd(period.letter_date)[:4]}{self.letters.next()}"
        first = periods[0]
        division = "110000" if rng.random() < 0.5 else first.district
        issued = first.letter_date if first.letter_date is not None else first.applied
        return f"{division}{ymd(issued)[:4]}{self.sequences.next()}", periods

    def _activated(self, status: str, start: int, end: int, cancelled: int | None) -> Period:
        u = self._u
        letter_date = start - u(20, 75)
        period = self._period(status, letter_date - u(5, 30))
        period.letter_date, period.start, period.end, period.ended = letter_date, start, end, cancelled
        period.events += [
            ("XB", period.applied, letter_date, "1", ""),
            ("TZ", letter_date, letter_date, "1", ""),
            ("JH", start - u(0, 3), start, "1", ""),
        ]
        last = min(self.t, end if cancelled is None else cancelled - 1)
        amendments = self._amendments(period, start + 30, last)
        if not amendments and start < LEGACY_CUTOFF and self.rng.random() < 0.3:
            period.stz = "1"
        period.events += amendments
        if cancelled is not None:
            period.events.append(
                ("ZX", cancelled - u(0, 7), cancelled, "1", self.rng.choice(_CANCEL_REASONS))
            )
        return period

    def _amendments(self, period: Period, first: int, last: int) -> list[Event]:
        """Extensions and changes: they update the period's row, the record says what changed."""
        rng, u = self.rng, self._u
        assert period.start is not None
        assert period.end is not None
        events: list[Event] = []
        if rng.random() < 0.25 and period.end - period.start >= 729:
            old_end = period.end - 365
            applied = old_end - u(30, 60)
            decided = applied + u(3, 15)
            if applied >= first and decided <= last:
                period.extended = (old_end, decided)
                events.append(("YQ", applied, decided, "1", f"YXQZ: {ymd(old_end)} -> {ymd(period.end)}"))
        if rng.random() < 0.10 and last - first >= 15:
            applied = first + int(rng.random() * (last - first - 10))
            r = rng.random()
            if r < 0.5:
                old = period.position
                period.position = "Chief " + old[7:] if old.startswith("Senior ") else "Senior " + old
                remark = f"ZW: {old} -> {period.position}"
            elif r < 0.8:
                was = period.employer
                while period.employer is was:
                    period.employer = self.employers[bisect(self.weights, rng.random() * self.weights[-1])]
                remark = f"DWMC: {was.name} -> {period.employer.name}"
            else:
                was_district = period.district
                while period.district == was_district:
                    period.district = draw_district(rng)
                remark = f"GZDD: {was_district} -> {period.district}"
            events.append(("BG", applied, applied + u(1, 10), "1", remark))
            events.sort(key=lambda e: e[1])
        return events


def write_work_permit(rows: Rows, person: Person, xkzh: str, periods: list[Period], xkid: int) -> int:
    """The person's WP rows; returns the next free XKID."""
    rows["WP_SQR"].append(
        {
            "SQRID": person.sqrid,
            "XM": person.name.passport_form.ljust(40),
            "XB": person.sex,
            "CSRQ": ymd(person.birth),
            "GJ": person.nationality,
            "HZHM": person.passport,
        }
    )
    rows["WP_HZLS"].extend(
        {"SQRID": person.sqrid, "HZHM": number, "QSRQ": ymd(start), "ZZRQ": ymd(end)}
        for number, start, end in person.passports
    )
    xkz, ywjl = rows["WP_XKZ"], rows["WP_YWJL"]
    for p in periods:
        xkz.append(
            {
                "XKID": xkid,
                "XKZH": xkzh,
                "SQRID": person.sqrid,
                "RCLB": p.rclb,
                "ZT": p.status,
                "YXQQ": "" if p.start is None else ymd(p.start),
                "YXQZ": "" if p.end is None else ymd(p.end),
                "DWMC": p.employer.name,
                "TYSHXYDM": p.employer.code,
                "GZDD": p.district,
                "ZW": p.position,
                "STZ": p.stz,
                "TZSBH": p.letter,
                "TZRQ": "" if p.letter_date is None else ymd(p.letter_date),
            }
        )
        ywjl.extend(
            {
                "XKID": xkid,
                "YWLX": kind,
                "SQRQ": ymd(applied),
                "BJRQ": "" if decided is None else ymd(decided),
                "JG": outcome,
                "BZ": remark,
            }
            for kind, applied, decided, outcome, remark in p.events
        )
        xkid += 1
    return xkid
