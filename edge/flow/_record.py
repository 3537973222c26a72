"""The rest of the crew's record (救急活動記録): EMS times, treatments, what was heard,
the estimated age and sex, the complaint's free text and the crew's ETA.

Each time is one touch to stamp now and can be corrected (``HHMM`` in JST, on the day
nearest the time it had). Nothing here blocks and nothing is refused that the crew may
need to send; a time that does not exist is a notice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.vocabulary import EMS_TIME, HEARD_KINDS, TREATMENTS

from . import _texts as T
from ._core import FlowCore, _notice
from ._model import JST

__all__ = ["RecordSteps", "near_hhmm"]


def near_hhmm(hhmm: str, was: datetime) -> datetime | None:
    """``HHMM`` (JST) on the day that puts it nearest ``was`` (00:05 keyed as 2355 is the
    evening before); None when it is not a time."""
    digits = hhmm.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) in (3, 4)):
        return None
    hour, minute = int(digits[:-2]), int(digits[-2:])
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    local = was.astimezone(JST)
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    best = min((moment + timedelta(days=d) for d in (-1, 0, 1)), key=lambda m: abs(m - local))
    return best.astimezone(UTC)


class RecordSteps(FlowCore):
    """Times, treatments and the patient's and crew's details of ``CaseFlow``."""

    def stamp_time(self, name: str) -> None:
        """One touch: EMS time ``name`` (an ``EMS_TIMES`` attr) is now."""
        if name not in EMS_TIME:
            raise ValueError(f"unknown EMS time {name!r}")
        with self._lock:
            self._open_case()
            self._case.times[name] = datetime.now(UTC)
        self._changed()

    def set_time(self, name: str, hhmm: str) -> None:
        """Correct EMS time ``name`` to ``HHMM`` (JST), near the time it had (or now)."""
        if name not in EMS_TIME:
            raise ValueError(f"unknown EMS time {name!r}")
        with self._lock:
            c = self._case
            moment = near_hhmm(hhmm, c.times.get(name) or datetime.now(UTC))
            if moment is None:
                self._notice = _notice(T.BAD_TIME, code="bad_time")
            else:
                c.times[name] = moment
                self._notice = None
        self._changed()

    def add_treatment(self, code: str, note: str | None = None) -> None:
        """A 処置 done now (``note``: its flow, its text for その他)."""
        if code not in TREATMENTS:
            raise ValueError(f"unknown treatment {code!r}")
        with self._lock:
            self._case.treatments.append((code, datetime.now(UTC), (note or "").strip() or None))
        self._changed()

    def remove_treatment(self, index: int) -> None:
        """Take back treatment ``index`` (0 = the first keyed), keyed by mistake."""
        with self._lock:
            if 0 <= index < len(self._case.treatments):
                del self._case.treatments[index]
        self._changed()

    def set_estimate(self, *, age: int | None = None, sex: str | None = None) -> None:
        """推定: the age (years) and sex the crew estimates when nobody can say."""
        if sex not in (None, "male", "female"):
            raise ValueError("sex is male or female")
        with self._lock:
            c = self._case
            if age is not None:
                c.estimate_age = age if 0 <= age <= 120 else None
            if sex is not None:
                c.estimate_sex = sex
        self._changed()

    def set_chief_complaint_note(self, text: str) -> None:
        with self._lock:
            self._case.chief_complaint_note = text.strip() or None
        self._changed()

    def add_heard(self, kind: str, text: str) -> None:
        """聴取: an allergy, condition or medication heard from the patient or family."""
        if kind not in HEARD_KINDS:
            raise ValueError(f"unknown heard kind {kind!r}")
        line = text.strip()
        if not line:
            return
        with self._lock:
            self._case.heard.setdefault(kind, []).append(line)
        self._changed()

    def set_eta(self, minutes: int | None) -> None:
        """The crew's own estimate of minutes to the hospital (None: from the distance)."""
        with self._lock:
            self._case.eta_minutes = minutes if minutes is None or 0 <= minutes <= 600 else None
        self._changed()
