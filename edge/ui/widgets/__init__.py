"""Reusable widgets of the edge screen: numeric pad, status bar, notice line, action bar."""

from __future__ import annotations

from ._availability import availability_line, availability_source
from ._bars import ActionBar, NoticeLine, StatusBar, status_text
from ._numpad import NumPad

__all__ = [
    "ActionBar",
    "NoticeLine",
    "NumPad",
    "StatusBar",
    "availability_line",
    "availability_source",
    "status_text",
]
