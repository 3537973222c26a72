"""The stored patient record (format v1) and its expansion into dated items.

One compact JSON object per patient. Keys refer to ``_catalog``. Dates are ISO
``YYYY-MM-DD`` (Japan dates). Long-term care is stored as *regimens* (a clinic
seen every ``i`` days with its repeat prescription) and dialysis as a schedule;
:func:`expand` turns them into the same dated items a hand-written record lists
explicitly, so the bundle builder sees one shape::

    {"v": 1, "asof": date,
     "p": {family, given, family_kana, given_kana, birth_date, sex,
           postal_code, prefecture, city, line},
     "allergies": [{"k", "d"}], "conditions": [{"k", "d", "s": active|resolved}],
     "regimens": [{"o", "ph", "s", "e", "i", "rx": [[drug, since]], "ep", "tx"}],
     "dx": {"o", "s", "e"} | null,
     "visits": [{"d", "o", "c": AMB|IMP|EMER, "end"?, "r"?}],
     "eprescriptions": [{"d", "o", "rx": [[drug, days]]}],
     "medications": [{"d", "o", "by", "rx": [[drug, days]]}],
     "surgeries": [{"d", "k", "o"}], "treatments": [{"d", "k", "o"}],
     "dialysis": [{"d", "s", "n", "o"}],
     "checks": [{"d", "o", "v": [values in HC_FIELDS order]}]}
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

__all__ = ["HC_FIELDS", "Item", "Record", "expand"]

Record = dict[str, Any]
Item = dict[str, Any]

# 特定健診 items: (name, LOINC, UCUM unit, category)
HC_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("身長", "8302-2", "cm", "vital-signs"),
    ("体重", "29463-7", "kg", "vital-signs"),
    ("BMI", "39156-5", "kg/m2", "vital-signs"),
    ("腹囲", "8280-0", "cm", "exam"),
    ("収縮期血圧", "8480-6", "mm[Hg]", "vital-signs"),
    ("拡張期血圧", "8462-4", "mm[Hg]", "vital-signs"),
    ("HbA1c（NGSP）", "4548-4", "%", "laboratory"),
    ("空腹時血糖", "1558-6", "mg/dL", "laboratory"),
    ("LDLコレステロール", "13457-7", "mg/dL", "laboratory"),
    ("HDLコレステロール", "2085-9", "mg/dL", "laboratory"),
    ("中性脂肪", "2571-8", "mg/dL", "laboratory"),
    ("AST", "1920-8", "U/L", "laboratory"),
    ("ALT", "1742-6", "U/L", "laboratory"),
    ("γ-GT", "2324-2", "U/L", "laboratory"),
    ("血清クレアチニン", "2160-0", "mg/dL", "laboratory"),
    ("血色素量", "718-7", "g/dL", "laboratory"),
)

_DIALYSIS_WEEKDAYS = (0, 2, 4)  # Mon/Wed/Fri sessions


def _dates(start: date, end: date, every: int) -> list[date]:
    """Visit dates of a regimen, newest first, ending at ``end``."""
    out: list[date] = []
    step = timedelta(days=every)
    d = end
    while d >= start:
        out.append(d)
        d -= step
    return out


def expand(record: Record, since: date | None = None) -> dict[str, list[Item]]:
    """All dated items of a record, regimens and dialysis schedule included.

    Args:
        record: the stored record.
        since: regimens and the dialysis schedule are expanded only from this
            date on (explicit items are returned as they are); it keeps a
            20-year dialysis history from costing a look-up its budget.
    """
    visits = list(record.get("visits", ()))
    epres = list(record.get("eprescriptions", ()))
    meds = list(record.get("medications", ()))
    treatments = list(record.get("treatments", ()))
    dialysis = list(record.get("dialysis", ()))
    for reg in record.get("regimens", ()):
        start, end = date.fromisoformat(reg["s"]), date.fromisoformat(reg["e"])
        every = int(reg["i"])
        ep = reg.get("ep")
        for d in _dates(start if since is None else max(start, since), end, every):
            iso = d.isoformat()
            visits.append({"d": iso, "o": reg["o"], "c": "AMB"})
            rx = [[drug, every] for drug, since in reg["rx"] if since <= iso]
            if rx:
                if reg.get("ph"):
                    meds.append({"d": iso, "o": reg["ph"], "by": reg["o"], "rx": rx})
                else:
                    meds.append({"d": iso, "o": reg["o"], "by": reg["o"], "rx": rx})
                if ep is not None and iso >= ep:
                    epres.append({"d": iso, "o": reg["o"], "rx": rx})
            if reg.get("tx"):
                treatments.append({"d": iso, "k": reg["tx"], "o": reg["o"]})
    dx = record.get("dx")
    if dx:
        dialysis.extend(_dialysis_months(dx, since))
    return {
        "visits": visits,
        "eprescriptions": epres,
        "medications": meds,
        "treatments": treatments,
        "dialysis": dialysis,
    }


def _dialysis_months(dx: dict[str, Any], since: date | None) -> list[Item]:
    """One item per calendar month of a Mon/Wed/Fri dialysis schedule."""
    start, end = date.fromisoformat(dx["s"]), date.fromisoformat(dx["e"])
    if since is not None:
        # Whole months, so the month counts do not change with the window.
        start = max(start, since.replace(day=1))
    out: list[Item] = []
    d = start
    month_first: date | None = None
    last: date | None = None
    n = 0
    while d <= end:
        if d.weekday() in _DIALYSIS_WEEKDAYS:
            if month_first is not None and last is not None and d.month != last.month:
                out.append({"d": last.isoformat(), "s": month_first.isoformat(), "n": n})
                month_first, n = None, 0
            if month_first is None:
                month_first = d
            last = d
            n += 1
        d += timedelta(days=1)
    if month_first is not None and last is not None:
        out.append({"d": last.isoformat(), "s": month_first.isoformat(), "n": n})
    for item in out:
        item["o"] = dx["o"]
    return out
