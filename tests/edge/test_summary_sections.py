"""The summary Bundle -> screen sections parser: order, "no data", dates; fuzzed."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.flow._summary import SECTION_ORDER, summary_sections


def _bundle(sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entry": [{"resource": {"resourceType": "Composition", "section": sections}}]}


def _section(key: str, lines: list[str]) -> dict[str, Any]:
    body = "".join(f"<li>{line}</li>" for line in lines)
    return {
        "code": {"coding": [{"code": key}]},
        "text": {"div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{body}</ul></div>'},
    }


def test_allergies_and_conditions_come_first_and_no_data_is_empty() -> None:
    out = summary_sections(
        _bundle(
            [
                _section("visits", ["2026-11-20 外来 &amp; 内科"]),
                _section("conditions", ["2型糖尿病 2009-02-02〜"]),
                _section("allergies", ["記録なし"]),
            ]
        )
    )
    assert [s.key for s in out] == [k for k, _ in SECTION_ORDER]
    assert out[0].key == "allergies"
    assert out[0].lines == ()  # stated as "no data" on screen
    assert out[1].lines == ("2型糖尿病 2009/02/02〜",)
    visits = next(s for s in out if s.key == "visits")
    assert visits.lines == ("2026/11/20 外来 & 内科",)


def test_no_bundle_gives_every_section_empty() -> None:
    assert all(s.lines == () for s in summary_sections(None))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_never_crashes_the_parser(value: Any) -> None:
    try:
        out = summary_sections(value if isinstance(value, dict) else {"entry": value})
    except (AttributeError, TypeError, IndexError, KeyError):
        raise AssertionError(f"crashed on {value!r}") from None
    assert len(out) == len(SECTION_ORDER)
