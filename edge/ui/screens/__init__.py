"""One screen per stage of the case flow."""

from __future__ import annotations

from edge.flow import CaseView, Stage

from ._base import FlowScreen
from .card import CardProblemScreen, ReadingScreen, StandbyScreen
from .case import JcsPicker, VitalPad, VitalsScreen
from .hospitals import ConfirmedScreen, HospitalsScreen
from .identity import (
    CollationScreen,
    ConsentScreen,
    IdentityScreen,
    LookingUpScreen,
    PinScreen,
)
from .summary import SummaryScreen

SCREENS: dict[Stage, type[FlowScreen]] = {
    s.STAGE: s
    for s in (
        StandbyScreen,
        ReadingScreen,
        CardProblemScreen,
        ConsentScreen,
        IdentityScreen,
        PinScreen,
        CollationScreen,
        LookingUpScreen,
        SummaryScreen,
        VitalsScreen,
        HospitalsScreen,
        ConfirmedScreen,
    )
}


def screen_for(view: CaseView) -> FlowScreen:
    return SCREENS[view.stage](view)


__all__ = ["SCREENS", "FlowScreen", "JcsPicker", "VitalPad", "screen_for"]
