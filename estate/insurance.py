"""Social insurance, the card service and BEIJING PASS: everything that hangs on the social
security number a person gets when a permit of theirs is first activated."""

from __future__ import annotations

import json
import random

from adapters.countries import NUMERIC_BY_ALPHA3 as _NUMERIC
from estate.formats import Rows, Series, SocialSecurityNumbers, iso, timestamp, ymd, ymd_int
from estate.people import Person
from estate.permits import ACTIVATED, Employer, Period, draw_district

INSURANCE_TYPES = ("110", "210", "310", "410", "510")
BENEFITS: tuple[tuple[str, str, int], ...] = (
    ("BT0001", "人才住房补贴 Talent housing subsidy", 500_000),
    ("BT0002", "交通补贴 Transport allowance", 30_000),
    ("BT0003", "子女教育补贴 Children's education allowance", 200_000),
    ("BT0004", "补充医疗 Supplementary medical benefit", 80_000),
    ("BT0005", "文化体验 Culture pass", 20_000),
    ("BT0006", "语言培训补贴 Language training subsidy", 150_000),
    ("BT0007", "体检补贴 Health check subsidy", 50_000),
    ("BT0008", "创业补贴 Start-up subsidy", 1_000_000),
)
_METHODS = (("FACE", "FR"), ("BANK", "BK"), ("COUNTER", "CT"))


class Insurance:
    def __init__(self, rng: random.Random, today: int, rows: Rows) -> None:
        self.rng = rng
        self.t = today
        self.numbers = SocialSecurityNumbers()
        self.insured = 0  # last AAC001 given
        self.cards = Series(rng, 8)
        self.ecards = Series(rng, 9)
        self.references = Series(rng, 8)
        self.ac01, self.ac02 = rows["AC01"], rows["AC02"]
        self.kxx, self.dzk, self.ff = rows["SBK_KXX"], rows["SBK_DZK"], rows["BJT_FF"]

    def _u(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1))

    def _insured(self, person: Person, district: str, passport: str) -> str:
        number = self.numbers.next(person.nationality, district, person.birth)
        self.insured += 1
        self.ac01.append(
            {
                "AAC001": self.insured,
                "AAC002": number,
                "AAC003": person.name.insurance_form,
                "AAC004": "1" if person.sex == "M" else "2",
                "AAC006": ymd_int(person.birth),
                "AAC161": _NUMERIC[person.nationality],
                "AAE135": passport,
            }
        )
        return number

    def look_alike(self, person: Person, passport: str) -> None:
        """An enrolment under an unknown passport number: same name and birth date, nothing else."""
        self._insured(person, draw_district(self.rng), passport)

    def enrol(self, person: Person, xkzh: str, periods: list[Period]) -> None:
        activated = [p for p in periods if p.status in ACTIVATED]
        if not activated:
            return
        rng, t, u = self.rng, self.t, self._u
        first, latest = activated[0], activated[-1]
        assert first.start is not None
        assert latest.start is not None
        assert latest.end is not None
        enrolled = min(t, first.start + u(0, 25))
        number = self._insured(person, first.district, person.passport_on(enrolled))
        if len(activated) > 1:  # the earlier period's participations, superseded
            ended = first.ended or first.end
            assert ended is not None
            self._participations(ymd_int(enrolled), ymd_int(ended), "4", first.employer.number, "0")
            enrolled = min(t, latest.start + u(0, 25))
        elif rng.random() < 0.05:  # a corrected row
            self._participations(ymd_int(enrolled), None, "1", latest.employer.number, "0", rng.randint(1, 3))
        stop: int | None = None
        if latest.status == "40":
            assert latest.ended is not None
            state, stop = "4", ymd_int(latest.ended)
        else:
            state = "2" if latest.status == "50" or rng.random() < 0.05 else "1"
        self._participations(ymd_int(enrolled), stop, state, latest.employer.number, "1")
        self._cards(person, number, xkzh, latest, enrolled)

    def _participations(
        self, start: int, stop: int | None, state: str, employer: int, valid: str, count: int = 5
    ) -> None:
        number = self.insured
        self.ac02.extend(
            {
                "AAC001": number,
                "AAE140": kind,
                "AAC008": state,
                "AAE030": start,
                "AAE031": stop,
                "AAB001": employer,
                "AAE100": valid,
            }
            for kind in INSURANCE_TYPES[:count]
        )

    def _card(self, number: str, name: str, state: str, issued: int | None, loaded: str = "") -> str:
        kh = self.rng.choice("ABCDEFGHJK") + self.cards.next()
        self.kxx.append(
            {
                "KH": kh,
                "SHBZHM": number,
                "XM": name,
                "KZT": state,
                "FKRQ": "" if issued is None else iso(issued),
                "YXQ": "" if issued is None else iso(issued + 3651),
                "GZXKXX": loaded,
            }
        )
        return kh

    def _cards(self, person: Person, number: str, xkzh: str, latest: Period, enrolled: int) -> None:
        r = self.rng.random()
        kh = "" if r < 0.01 else self._physical_card(person, number, xkzh, latest, enrolled, r < 0.06)
        if self.rng.random() < 0.7:
            self._ecard(number, xkzh, kh, latest, enrolled)

    def _physical_card(self, person: Person, number: str, xkzh: str, latest: Period, enrolled: int,
                       pending: bool) -> str:  # fmt: skip
        """The card rows of an enrolled person; the number of the card in use or cancelled, or ""."""
        rng, t, u = self.rng, self.t, self._u
        name = person.name.insurance_form.upper()
        issued = enrolled + u(10, 45)
        if pending or issued > t:
            self._card(number, name, "0", None)
            return ""
        if latest.status == "40" and rng.random() < 0.5:
            return self._card(number, name, "3", issued)
        if rng.random() < 0.03 and t - issued >= 60:  # reported lost, then replaced
            lost = issued + u(30, t - issued - 7)
            old = self._card(number, name, "2", issued)
            if rng.random() < 0.5:
                self._payments(old, issued, lost, paid_only=True)
            issued = lost + u(7, 30)
            if issued > t:
                self._card(number, name, "0", None)
                return ""
        kh = self._card(number, name, "1", issued, self._loaded(xkzh, latest, issued))
        if rng.random() < 0.4:
            self._payments(kh, issued, t)
        return kh

    def _loaded(self, xkzh: str, latest: Period, issued: int) -> str:
        """GZXKXX: the permit information loaded onto a card in use (often none on legacy permits)."""
        assert latest.end is not None
        if latest.stz == "1" and self.rng.random() < 0.6:
            return ""
        at = timestamp(min(self.t, max(issued, latest.last_decision)), self._u(8 * 3600, 18 * 3600))
        state = "40" if latest.status == "40" else "30"
        return json.dumps(
            {"XKZH": xkzh, "ZT": state, "YXQZ": ymd(latest.end), "JZSJ": at}, ensure_ascii=False
        )

    def _ecard(self, number: str, xkzh: str, kh: str, latest: Period, enrolled: int) -> None:
        rng = self.rng
        r = rng.random()
        state = "2" if latest.status == "40" and r < 0.5 else "1" if r < 0.87 else "0" if r < 0.96 else "2"
        registered = min(self.t, enrolled + self._u(0, 300))
        r = rng.random()
        method, prefix = _METHODS[0 if r < 0.6 else 1 if r < 0.85 else 2]
        self.dzk.append(
            {
                "DZKID": "DZK" + self.ecards.next(),
                "KH": kh,
                "SHBZHM": number,
                "XKZH": xkzh,
                "QFZT": state,
                "QFSJ": "" if state == "0" else timestamp(registered, self._u(0, 86399)),
                "RZFS": method,
                "RZBH": f"{prefix}{ymd(registered)}{self.references.next()}",
            }
        )

    def newcomer_ecard(self, rng: random.Random, xkzh: str, notice: int) -> None:
        """A signed e-card registered with the permit number before enrollment: `SHBZHM` and
        `KH` empty, filed under the permit number it carries."""
        registered = min(self.t, notice + 20 + int(rng.random() * 40))
        r = rng.random()
        method, prefix = _METHODS[0 if r < 0.6 else 1 if r < 0.85 else 2]
        self.dzk.append(
            {
                "DZKID": "DZK" + self.ecards.next(),
                "KH": "",
                "SHBZHM": "",
                "XKZH": xkzh,
                "QFZT": "1",
                "QFSJ": timestamp(registered, int(rng.random() * 86400)),
                "RZFS": method,
                "RZBH": f"{prefix}{ymd(registered)}{self.references.next()}",
            }
        )

    def _payments(self, kh: str, first: int, last: int, paid_only: bool = False) -> None:
        rng, u = self.rng, self._u
        if last - first < 10:
            return
        done: set[tuple[str, int]] = set()
        for _ in range(1 + int(rng.random() * 3)):
            code, _name, amount = rng.choice(BENEFITS)
            day = u(first + 10, last)
            r = 0.0 if paid_only else rng.random()
            state = "S" if r < 0.85 else "P" if r < 0.95 else "R"
            if state == "P":
                day = self.t + u(1, 30)  # the planned payment date
            if (code, day) not in done:
                done.add((code, day))
                self.ff.append({"KH": kh, "DYDM": code, "FFRQ": iso(day), "JE": amount, "ZT": state})


def benefit_rows(rows: Rows) -> None:
    rows["BJT_DY"].extend({"DYDM": code, "DYMC": name, "JE": amount} for code, name, amount in BENEFITS)


def employer_rows(rows: Rows, employers: list[Employer]) -> None:
    rows["AB01"].extend({"AAB001": e.number, "AAB004": e.name, "AAB998": e.code} for e in employers)
