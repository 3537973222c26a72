"""One screen per stage of the case flow.

Only the standby screen is imported with the app: the others (and what they need:
the pad, the summary's tables) load when their stage is first shown (cold start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge.flow import CaseView, Stage

from ._base import FlowScreen
from .card import StandbyScreen

if TYPE_CHECKING:
    from .pads import JcsPicker, VitalPad

# Each stage's screen: (module, class), imported when first shown.
_WHERE: dict[Stage, tuple[str, str]] = {
    Stage.STANDBY: (".card", "StandbyScreen"),
    Stage.READING: (".card", "ReadingScreen"),
    Stage.CARD_PROBLEM: (".card", "CardProblemScreen"),
    Stage.CONSENT: (".identity", "ConsentScreen"),
    Stage.IDENTITY: (".identity", "IdentityScreen"),
    Stage.PIN: (".identity", "PinScreen"),
    Stage.COLLATION_B: (".identity", "CollationScreen"),
    Stage.LOOKING_UP: (".identity", "LookingUpScreen"),
    Stage.SUMMARY: (".summary", "SummaryScreen"),
    Stage.VITALS: (".case", "VitalsScreen"),
    Stage.HOSPITALS: (".hospitals", "HospitalsScreen"),
    Stage.CONFIRMED: (".hospitals", "ConfirmedScreen"),
}
_NAMES = {cls: module for module, cls in _WHERE.values()} | {
    "JcsPicker": ".pads",
    "VitalPad": ".pads",
}


def screen_class(stage: Stage) -> type[FlowScreen]:
    """The screen of ``stage`` (its module imported on first use)."""
    module, name = _WHERE[stage]
    cls: type[FlowScreen] = getattr(importlib.import_module(module, __name__), name)
    assert cls.STAGE is stage
    return cls


def screen_for(view: CaseView) -> FlowScreen:
    return screen_class(view.stage)(view)


def __getattr__(name: str) -> Any:
    if name == "SCREENS":  # every stage's screen (imports them all)
        return {stage: screen_class(stage) for stage in _WHERE}
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "FlowScreen",
    "JcsPicker",
    "StandbyScreen",
    "VitalPad",
    "screen_class",
    "screen_for",
]
