"""The exit-entry administration's view: persons under the passport they entered with, their
visas, entries and residence permits; workers and the foreigners around them."""

from __future__ import annotations

import random

from adapters.countries import CHINESE_BY_ALPHA3
from estate.formats import Rows, Series, slashed
from estate.people import Person
from estate.permits import ACTIVATED, LEGACY_CUTOFF, Period, draw_district

HEADQUARTERS = "北京市公安局出入境管理总队"
_DISTRICT_OFFICES = {
    "110101": "东城",
    "110102": "西城",
    "110105": "朝阳",
    "110106": "丰台",
    "110107": "石景山",
    "110108": "海淀",
    "110111": "房山",
    "110112": "通州",
    "110113": "顺义",
    "110114": "昌平",
    "110115": "大兴",
}
_PORTS = ("PEK", "PEK", "PEK", "PEK", "PEK", "PKX", "PKX", "PKX", "SHA", "CAN")


class ExitEntry:
    def __init__(self, rng: random.Random, today: int, rows: Rows) -> None:
        self.rng = rng
        self.t = today
        self.people = Series(rng, 10)
        self.visas = Series(rng, 8)
        self.permits = Series(rng, 8)
        self.ry, self.qz, self.rj, self.jlxk = (
            rows["CRJ_RY"],
            rows["CRJ_QZ"],
            rows["CRJ_RJ"],
            rows["CRJ_JLXK"],
        )

    def _u(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1))

    def _person(self, person: Person, passport: str) -> str:
        rybh = "RY" + self.people.next()
        self.ry.append(
            {
                "RYBH": rybh,
                "YWXM": person.name.exit_entry_form,
                "XB": "男" if person.sex == "M" else "女",
                "CSRQ": slashed(person.birth),
                "GJ": CHINESE_BY_ALPHA3[person.nationality],
                "ZJHM": passport,
            }
        )
        return rybh

    def _visa(self, rybh: str, kind: str, issued: int, days: int, letter: str = "") -> str:
        qzh = "V" + self.visas.next()
        self.qz.append(
            {
                "QZH": qzh,
                "RYBH": rybh,
                "QZZL": kind,
                "QFRQ": slashed(issued),
                "YXQZ": slashed(issued + days - 1),
                "TZSBH": letter,
            }
        )
        return qzh

    def _entry(self, rybh: str, day: int, qzh: str) -> int:
        self.rj.append({"RYBH": rybh, "RJRQ": slashed(day), "KA": self.rng.choice(_PORTS), "QZH": qzh})
        return day

    def _residence(self, rybh: str, purpose: str, issued: int, until: int, state: str, district: str) -> None:
        rng = self.rng
        office = (
            HEADQUARTERS
            if rng.random() < 0.4
            else f"北京市公安局{_DISTRICT_OFFICES[district]}分局出入境管理支队"
        )
        r = rng.random()
        channel = "XT" if issued < LEGACY_CUTOFF or r < 0.55 else "DZK" if r < 0.85 else "EWM"
        self.jlxk.append(
            {
                "JLXKZH": "E" + self.permits.next(),
                "RYBH": rybh,
                "JLSY": purpose,
                "QFRQ": slashed(issued),
                "YXQZ": slashed(until),
                "QFJG": office,
                "ZT": state,
                "HYFS": channel,
            }
        )

    def look_alike(self, person: Person, passport: str) -> None:
        """A second person record under a passport number no other agency knows."""
        self._person(person, passport)

    def worker(self, person: Person, periods: list[Period]) -> None:
        """A worker who entered on a Z visa for a notice; known under the first passport."""
        rng, t, u = self.rng, self.t, self._u
        visits = [
            p
            for p in periods
            if p.status in ACTIVATED
            or (
                p.status == "20"
                and p.letter_date is not None
                and p.letter_date <= t - 12
                and rng.random() < 0.3
            )
        ]
        if not visits or (visits[0].status in ACTIVATED and rng.random() >= 0.92):
            return
        rybh = self._person(person, person.passports[0][0])
        days: list[int] = []
        first_letter = visits[0].letter_date
        assert first_letter is not None
        if rng.random() < 0.15:  # came before on a business or exchange visa
            issued = first_letter - u(200, 1500)
            qzh = self._visa(rybh, "M" if rng.random() < 0.6 else "F", issued, 365)
            days.append(self._entry(rybh, issued + u(5, 60), qzh))
        for p in visits:
            assert p.letter_date is not None
            assert p.start is not None
            assert p.end is not None
            issued = p.letter_date + u(2, 8)
            qzh = self._visa(rybh, "Z", issued, 90, p.letter)
            latest = p.start - 4 if p.status in ACTIVATED else t
            entered = self._entry(rybh, issued + u(1, max(1, latest - issued)), qzh)
            days.append(entered)
            if p.status in ACTIVATED:
                self._residences(rybh, p, entered)
        r = rng.random()
        later = days[-1] + 30
        for _ in range(min(3 - len(days), 0 if r < 0.5 else 1 if r < 0.8 else 2) if later <= t else 0):
            day = u(later, t)
            if day not in days:
                days.append(self._entry(rybh, day, ""))  # on the residence permit

    def _residences(self, rybh: str, p: Period, entered: int) -> None:
        rng, t = self.rng, self.t
        assert p.end is not None
        issued = min(t, entered + self._u(5, 25))
        if p.status == "30" and p.end >= t:
            if rng.random() >= 0.9:
                return
            if p.extended is not None:  # the first residence permit ran to the end before the extension
                old_end, granted = p.extended
                self._residence(rybh, "GZ", issued, old_end, "Y" if old_end < t else "N", p.district)
                issued = min(t, granted + self._u(1, 20))
            self._residence(rybh, "GZ", issued, p.end, "N" if rng.random() < 0.03 else "Y", p.district)
        elif rng.random() < (0.8 if p.status == "40" else 0.7):  # cancelled: void; expired: ran out
            self._residence(rybh, "GZ", issued, p.end, "N" if p.status == "40" else "Y", p.district)

    def visitor(self, person: Person, family: bool) -> None:
        """A family member (S1 visa, TQ residence) or a student (X1, XX): not a worker at all."""
        rng, t, u = self.rng, self.t, self._u
        rybh = self._person(person, person.passport)
        issued = t - u(30, 1000)
        qzh = self._visa(rybh, "S1" if family else "X1", issued, 90)
        entered = self._entry(rybh, min(t, issued + u(1, 60)), qzh)
        if rng.random() < 0.85:
            start = min(t, entered + u(5, 25))
            self._residence(
                rybh, "TQ" if family else "XX", start, start + u(180, 1095), "Y", draw_district(rng)
            )
