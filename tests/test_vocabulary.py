"""The case's vocabulary is defined once, in ``sync.vocabulary`` (exported by ``sync.fhir_case``).

The device, the hospital's card and the FHIR export import its labels, ranges and
codes; a second copy anywhere in library code or the hospital's templates is found here
(the copies drifted before: 顔写真で確認 on the device, 顔写真確認 at the hospital).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sync.fhir_case import (
    ASSURANCE_LABELS,
    BP_PANEL,
    CONSENT_LABELS,
    EMS_TIMES,
    SUMMARY_SECTIONS,
    VITAL_FIELDS,
    VITALS_PANEL,
)

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "sync" / "vocabulary.py"
LIBRARIES = ("errbase", "edge", "sync", "hub_server", "hospital", "kyukyu")
# Short words ("脈拍", "SpO2", "顔写真で確認", which a sentence may say) are copies only as
# a whole string; long ones (a consent's wording) anywhere in one.
WHOLE_MAX = 6
# The synthetic medical source's records (health checks, procedures, prescriptions) are
# another vocabulary that happens to share words (手術, 人工透析) and LOINC's
# blood-pressure codes with ours.
SOURCE_DATA = (
    "hub_server/medical/_catalog.py",
    "hub_server/medical/_fhir.py",
    "hub_server/medical/_record.py",
)


def _labels() -> set[str]:
    words = {f.label.ja for f in VITAL_FIELDS} | {f.label.en for f in VITAL_FIELDS}
    words |= {label.ja for label in (*CONSENT_LABELS.values(), *ASSURANCE_LABELS.values())}
    words |= {t.label.ja for t in EMS_TIMES}
    words |= {label.ja for label in SUMMARY_SECTIONS.values()}
    words |= {label for f in VITAL_FIELDS for label, _ in f.choices if len(label) > 1}
    return words


def _codes() -> set[str]:
    """The LOINC codes (a local code such as "jcs" is also a word of its own)."""
    codes = {f.coding.code for f in VITAL_FIELDS} | {VITALS_PANEL.code, BP_PANEL.code}
    return {c for c in codes if re.fullmatch(r"\d+-\d", c)}


def _ranges() -> set[tuple[float, ...]]:
    out: set[tuple[float, ...]] = set()
    for f in VITAL_FIELDS:
        if f.plausible is not None:
            out.add(tuple(float(x) for x in f.plausible))
    return out


def _copy_of(text: str, words: set[str]) -> str | None:
    text = text.strip()
    if text in words:
        return text
    if text.isascii():  # every long label is Japanese
        return None
    return next((w for w in words if len(w) > WHOLE_MAX and w in text), None)


def _library_files() -> list[Path]:
    return [
        f
        for top in LIBRARIES
        for f in sorted((ROOT / top).rglob("*.py"))
        if f != HOME
        and "migrations" not in f.parts
        and f.relative_to(ROOT).as_posix() not in SOURCE_DATA
    ]


def copies_in_code() -> list[str]:
    words, codes, ranges = _labels(), _codes(), _ranges()
    found = []
    for f in _library_files():
        rel = f.relative_to(ROOT).as_posix()
        tree = ast.parse(f.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                word = _copy_of(node.value, words)
                if word is not None:
                    found.append(f"{rel}:{node.lineno}: label {word!r}")
                if node.value in codes:
                    found.append(f"{rel}:{node.lineno}: code {node.value!r}")
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                numbers = [v for v in values if isinstance(v, int | float)]
                if len(numbers) == 2 and tuple(float(v) for v in numbers) in ranges:
                    found.append(f"{rel}:{node.lineno}: range {tuple(values)}")
    return found


def copies_in_templates() -> list[str]:
    words = _labels()
    found = []
    for f in sorted((ROOT / "hospital" / "templates").glob("*.html")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            # The text between tags and attribute values: what a page says.
            for text in re.findall(r">([^<>{}]+)<|\"([^\"{}]+)\"", line):
                word = _copy_of("".join(text), words)
                if word is not None:
                    found.append(f"{f.relative_to(ROOT)}:{n}: label {word!r}")
    return found


def test_no_library_restates_a_label_range_or_code_of_the_vocabulary() -> None:
    assert copies_in_code() == []


def test_the_hospital_templates_take_the_labels_from_the_vocabulary() -> None:
    assert copies_in_templates() == []


def test_the_checks_find_a_copy(tmp_path: Path) -> None:
    """The scan itself: it sees the copies the hospital used to keep."""
    words = _labels()
    assert _copy_of("顔写真で確認", words) == "顔写真で確認"
    assert _copy_of("照合番号B＋券面事項で確認済み", words) == "照合番号B＋券面事項"
    assert _copy_of("本人確認: 意識障害等により同意取得困難（生命・身体保護のため閲覧）", words)
    assert _copy_of("脈拍", words) == "脈拍"
    assert _copy_of("脈拍を入力してください", words) is None  # a sentence, not a label
    assert (40.0, 280.0) in _ranges()
    assert "8867-4" in _codes()


def test_every_vital_is_keyed_or_received_and_sent() -> None:
    """A row of the table is a value of VitalSigns, and of VitalsDraft when keyed."""
    from dataclasses import fields

    from edge.flow import VitalsDraft
    from sync.fhir_case import VitalSigns

    sent = {f.name for f in fields(VitalSigns)} - {"observed_at"}
    keyed = {f.name for f in fields(VitalsDraft)} - {"observed_at"}
    assert {f.attr for f in VITAL_FIELDS} == sent
    assert {f.key for f in VITAL_FIELDS if f.keyed} == keyed
