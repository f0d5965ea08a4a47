"""A deterministic synthetic estate across the five legacy databases (DOMAIN.md, "The five
legacy systems"), for development, tests, drills and benchmarks.

Every person is a foreign worker with one applicant row (`SQRID = i + 1`); the other agencies
know them as their story dictates. Approximate shares of all persons (measured at 100,000):

- current permit period: valid 60 % (3 % of all end within 30 days, 5 % within 31-90), valid
  but past its end date (`ZT 30`, the hub reports EXPIRED) 2 %, expired 8 %, cancelled 5 %,
  under review 10 %, notice issued 8 %, rejected 7 %;
- successive periods under one permit number (an older expired or cancelled one) 10 %;
  extended periods 8 %, changed ones (position, employer or district) 8 %;
- legacy physical-card permits (`STZ = 1`: started before 2024-12-01, never extended or
  changed) 18 %; their cards in use often carry no permit information (`GZXKXX` empty);
- renewed passport 8 %: both in WP_HZLS; exit-entry knows every one of them by the old
  number, social insurance shows the old one for about half (enrolled before the renewal);
- single-name persons 2 % (30 % of Indonesians); multi-word given names or surnames
  (`ANNA MARIA`, `VAN DER BERG`) 12 %; diacritics (Müller, Groß, Søren, José, Zoë, Łukasz)
  20 %, folded at social insurance (`Mueller`, `Gross`, `Soeren`, `Jose`, `Zoe`, `Lukasz`);
- social insurance: everyone with an activated period, 77 %; superseded participation rows
  (`AAE100 = 0`) for 14 % of them; of the enrolled: no card ordered yet 1 %, card pending
  production 7 %, lost and replaced 2 %, cancelled with the permit 4 %; e-card 70 % (of
  those unsigned 9 %, revoked 8 %, no card number while the card is pending 8 %);
- exit-entry: 73 % of persons (92 % of workers with an activated permit, 30 % of those
  with only a notice; nobody under review or rejected); 15 % of them came before on an M/F
  visa; one to three entries each;
- BEIJING PASS payments on 40 % of cards in use: paid 86 %, pending 10 %, rejected 5 %;
- left alone: non-workers known to exit-entry only (family on S1/TQ, students on X1/XX) 3 %;
- look-alikes, to be linked WEAK and never merged: 0.5 % get an extra exit-entry person and
  0.5 % an extra insured person with the same name, sex, birth date and nationality under a
  passport number no other agency knows (one digit misread as a letter).

No two persons share a folded name and a birth date, and no passport number repeats, so the
look-alikes are the only weak evidence in the estate.
"""

from estate.generator import EstateSummary, Worker, generate_estate

__all__ = ["EstateSummary", "Worker", "generate_estate"]
