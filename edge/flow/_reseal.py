"""A case the platform refused for its envelope version, sealed again while it is open.

Under ``KYUKYU_HUB_REQUIRE_PQ`` the platform refuses a v1 case (422
``envelope_version_refused``); a device sealed one from a directory older than the
policy or than a hospital's hybrid key. The sender (``sync.reseal``) asks the flow,
which alone holds the case (in memory): the flow fetches the hub-signed directory
again (the one fetch and signature check there is), and if the case is still open and
the directory is not one the case was sealed under, seals the same case (same case id)
for the same recipients from it, v2 where the new directory says so; a recipient that
is 要電話 under the new directory (no hybrid key while the platform requires them) is
left out, its row reads 要電話 again and the crew is told to phone it. Otherwise the
case is recorded refused, and the crew is told it did not reach the hospitals and to
phone them. 送信済み still waits for the platform's 201 of the new envelope.

A closure (中止 / 不搬送) refused for its version is sealed again the same way, from the
reason the flow keeps in memory until the platform has it (``_closures``; the patient is
forgotten by then), once per directory version (``_closure_book``), v2 to the case's
recipients with a hybrid key; otherwise it is recorded refused and the crew is told to
phone the hospitals about the 中止.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sync.closure import seal_closure
from sync.envelope import SealedCase
from sync.fhir_case import build_case_bundle
from sync.outbox import PendingCase
from sync.seal import seal_json

from . import _texts as T
from ._core import _notice
from ._sending import HospitalSteps

__all__ = ["ResealSteps"]

log = logging.getLogger("edge.flow")


class _FlowResealer:
    """The flow as ``sync.reseal.Resealer`` (kept off the flow's own public face)."""

    def __init__(self, flow: ResealSteps) -> None:
        self._flow = flow

    def reseal(self, case: PendingCase) -> bytes | SealedCase | None:
        return self._flow._reseal_refused(case)

    def refused(self, case_id: str, kind: str = "case") -> None:
        if kind == "closure":
            self._flow._closure_refused(case_id)
        else:
            self._flow._case_refused(case_id)


class ResealSteps(HospitalSteps):
    """Sealing a refused case again from the fresh directory, or saying it was refused."""

    def _resealer(self) -> _FlowResealer:
        return _FlowResealer(self)

    def _names(self, hospital_ids: Iterable[str]) -> str:
        names = {h.id: h.name for h in self._directory}
        return "、".join(names.get(i, "送信先の病院") for i in dict.fromkeys(hospital_ids))

    def _reseal_refused(self, case: PendingCase) -> bytes | None:
        """The same case sealed again from a freshly fetched directory, or None. Runs in
        the sender's thread; ``PlatformError`` when the directory cannot be fetched."""
        if case.kind == "closure":
            return self._reseal_closure(case.case_id)
        with self._lock:
            c = self._case
            if not c.open or case.case_id not in c.sealed_for:
                return None  # not open here any more: the plaintext is gone
        self._fetch_directory()  # hub-signed; raises PlatformError
        with self._lock:
            if self._case is not c or not self._reseal_book.may_reseal(
                case.case_id, self._directory_version
            ):
                return None  # forgotten meanwhile, or already sealed under this directory
            self._reseal_book.sealed(case.case_id, self._directory_version)
            by_id = {h.id: h for h in self._directory}
            recipients = list(c.sealed_for[case.case_id])
            targets = [by_id[i] for i in recipients if i in by_id and not by_id[i].phone_only]
            left_out = [i for i in recipients if i not in {h.id for h in targets}]
            if not targets:
                return None
            record = self._record(case.case_id, tuple(h.id for h in targets))
            version = self._sealing_version()
        keys = {h.id: h.sealing_keys for h in targets}
        sealed = seal_json(
            build_case_bundle(record),
            case_id=case.case_id,
            device_id=self._device.device_id,
            device_key=self._device.key,
            recipients=keys,
            version=version,
        )
        with self._lock:
            if self._case is c:
                c.sealed_for[case.case_id] = keys
                for hospital_id in left_out:  # 要電話 again: never a recipient of this case
                    c.sent.pop(hospital_id, None)
                if left_out:
                    names = self._names(left_out)
                    self._notice = _notice(
                        T.RESEALED_LEFT_OUT, "warning", "resealed", hospitals=names
                    )
                else:  # "queued": 送信済み once the platform has the new envelope (201)
                    self._notice = _notice(T.RESEALED, "info", "queued")
        log.warning("case sealed again from the refreshed directory (v%s)", version or "auto")
        self._changed()
        return sealed

    def _case_refused(self, case_id: str) -> None:
        """The outbox recorded ``case_id`` refused: the rows and a notice say so."""
        with self._lock:
            c = self._case
            mine = [h for h, cid in c.sent.items() if cid == case_id]
            if mine:
                c.refused.add(case_id)
                text, hospitals = T.CASE_REFUSED, mine
            else:  # a case of an earlier patient (forgotten, or before a restart)
                status = self._outbox.status(case_id)
                text, hospitals = T.EARLIER_CASE_REFUSED, list(status.recipients if status else ())
            self._notice = _notice(
                text, "error", "case_refused", hospitals=self._names(hospitals) or "病院"
            )
        self._changed()

    def _reseal_closure(self, case_id: str) -> bytes | None:
        """A closure refused for its envelope version, sealed again from a freshly fetched
        directory while its reason is in memory (``_closures``), once per directory
        version; to the case's recipients with a hybrid key (the others are phoned)."""
        with self._lock:
            if case_id not in self._closures:
                return None  # the reason is gone (a restart): recorded refused
        self._fetch_directory()  # hub-signed; raises PlatformError
        with self._lock:
            pending = self._closures.get(case_id)
            if pending is None or not self._closure_book.may_reseal(
                case_id, self._directory_version
            ):
                return None
            self._closure_book.sealed(case_id, self._directory_version)
            recipients, left_out, version = self._closure_recipients(pending.sealed_for)
            if not recipients:
                return None
        sealed = seal_closure(
            case_id=case_id,
            reason=pending.reason,
            closed_at=pending.closed_at,
            device_id=self._device.device_id,
            device_key=self._device.key,
            recipients=recipients,
            version=version,
        )
        if left_out:
            with self._lock:
                self._notice = _notice(
                    T.CLOSURE_RESEALED_LEFT_OUT,
                    "warning",
                    "closure_resealed",
                    hospitals=self._names(left_out),
                )
            self._changed()
        log.warning("closure sealed again from the refreshed directory (v%s)", version or "auto")
        return sealed

    def _closure_refused(self, case_id: str) -> None:
        """The outbox recorded the closure of ``case_id`` refused: the crew phones them."""
        with self._lock:
            pending = self._closures.pop(case_id, None)
            if pending is not None:
                hospitals: Iterable[str] = pending.sealed_for
            else:
                status = self._outbox.status(case_id)
                hospitals = status.recipients if status else ()
            self._notice = _notice(
                T.CLOSURE_REFUSED,
                "error",
                "closure_refused",
                hospitals=self._names(hospitals) or "事案を送った病院",
            )
        self._changed()
