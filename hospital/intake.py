"""What an opened case must be before the hospital stores it, and the refusals' codes.

The payload of a case that opened (sealed for this hospital, signed by an enrolled
device) is still only bytes. Before it is stored it must be:

- UTF-8 JSON (``case_not_json``): an integer too long for Python reads as a float
  (infinite), never as an error; nesting deeper than the parser allows is refused;
- a FHIR Bundle object (``case_not_bundle``): a JSON object whose ``resourceType``
  is ``Bundle``;
- a document the dashboard can read (``case_invalid``): ``type`` ``document``, a
  non-empty ``entry`` list (at most ``MAX_ENTRIES``) of objects each holding a
  ``resource`` object with a string ``resourceType``, the first one a
  ``Composition`` (a FHIR document starts with it: the sections say what the
  complaint, the vitals and the summary are); nested at most ``MAX_DEPTH`` deep;
  every string valid Unicode (no lone surrogates, which no UTF-8 store or page
  can hold).

Nothing else is checked: odd values (a pulse of 10**30, a year 9999, a number
where a string belongs) are stored and the dashboard shows what it can. A case
that cannot be stored for another reason (a value the database refuses) is
``case_store_failed``. The refusals are ``sync.CaseRefused``: the receiver records
them (code only, never content) and the stream goes on.
"""

from __future__ import annotations

import json
from typing import Any

from sync import CaseRefused

__all__ = [
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "CaseInvalid",
    "CaseNotBundle",
    "CaseNotJson",
    "CaseStoreFailed",
    "check_case",
]

MAX_DEPTH = 64  # a device's Bundle nests about 10 deep
MAX_ENTRIES = 10_000  # a device's Bundle has tens
_INT_DIGITS = 4000  # Python refuses to read longer integers (sys.int_info)


class CaseNotJson(CaseRefused):
    code = "case_not_json"
    message_ja = "受信した事案データをJSONとして読めません。"
    message_en = "The received case is not UTF-8 JSON."


class CaseNotBundle(CaseRefused):
    code = "case_not_bundle"
    message_ja = "受信した事案データがFHIRのBundleではありません。"
    message_en = "The received case is not a FHIR Bundle."


class CaseInvalid(CaseRefused):
    code = "case_invalid"
    message_ja = "受信した事案データの構成が不正です（FHIR文書として読めません）。"
    message_en = "The received case is not a FHIR document Bundle the dashboard can read."


class CaseStoreFailed(CaseRefused):
    code = "case_store_failed"
    message_ja = "受信した事案を保存できませんでした。"
    message_en = "The received case could not be stored."


def _int(text: str) -> int | float:
    return int(text) if len(text) <= _INT_DIGITS else float(text)


def check_case(payload: bytes) -> dict[str, Any]:
    """The case's Bundle, checked (see the module); raises a ``CaseRefused`` subclass.

    The errors' details name the rule that failed, never a value of the case.
    """
    try:
        obj = json.loads(payload.decode("utf-8"), parse_int=_int)
    except (UnicodeDecodeError, ValueError):
        raise CaseNotJson("not UTF-8 JSON") from None
    except RecursionError:
        raise CaseNotJson("nested too deep to parse") from None
    if not isinstance(obj, dict):
        raise CaseNotBundle(f"a JSON {type(obj).__name__}, not an object")
    if obj.get("resourceType") != "Bundle":
        raise CaseNotBundle("resourceType is not Bundle")
    if obj.get("type") != "document":
        raise CaseInvalid("not a document Bundle")
    entries = obj.get("entry")
    if not isinstance(entries, list) or not entries:
        raise CaseInvalid("no entries")
    if len(entries) > MAX_ENTRIES:
        raise CaseInvalid(f"more than {MAX_ENTRIES} entries")
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise CaseInvalid("an entry without a resource")
    if entries[0]["resource"]["resourceType"] != "Composition":
        raise CaseInvalid("the first entry is not a Composition")
    _check_tree(obj)
    return obj


def _check_tree(obj: Any) -> None:
    """Depth and Unicode, without recursion (the parser allows deeper than we do)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise CaseInvalid(f"nested deeper than {MAX_DEPTH}")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key)
                stack.append((value, depth + 1))
        else:
            stack.extend((value, depth + 1) for value in node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CaseInvalid("text that is not valid Unicode") from None
