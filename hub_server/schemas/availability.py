"""応需状況 and regions (docs/availability.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hub_server.schemas._base import TEXT, RegionCode, _Strict

__all__ = [
    "AvailabilityDoc",
    "AvailabilityItemSet",
    "AvailabilityPage",
    "AvailabilitySet",
    "RegionPublic",
    "RegionSet",
]


class AvailabilityItemSet(_Strict):
    """One department's or capability's status (``clear``: remove it, shown 不明)."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    status: Literal["available", "consult", "unavailable", "clear"]
    note: str | None = Field(default=None, max_length=100, pattern=TEXT)
    expires_at: datetime | None = Field(default=None, description="required unless clear")
    count: int | None = Field(default=None, ge=0, le=10_000, description="ICU 空床数 only")


class AvailabilitySet(_Strict):
    items: list[AvailabilityItemSet] = Field(min_length=1, max_length=40)


class AvailabilityDoc(BaseModel):
    """A hospital's newest document (``sync.availability``: ``items`` code -> status)."""

    hospital_id: str
    name: str | None = None
    region: str | None = None
    version: int
    updated_at: str
    items: dict[str, dict[str, Any]]


class AvailabilityPage(BaseModel):
    """Documents newer than ``after``; ``version``: the platform's counter when read (ask
    again with ``after=version``); ``regions``: the regions the caller sees (None: all)."""

    version: int
    regions: list[str] | None
    hospitals: list[AvailabilityDoc]


class RegionSet(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    neighbours: list[RegionCode] = Field(default_factory=list, max_length=50)
    # 災害時の直接送信: the region's hospitals' direct addresses go into the directory.
    direct_route: bool = False


class RegionPublic(BaseModel):
    code: str
    name: str
    neighbours: list[str]
    direct_route: bool = False
