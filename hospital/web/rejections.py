"""受信できない事案: the cases the receiving service refused, never any content."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hospital.casefile import clip
from hospital.intake import CaseInvalid, CaseNotBundle, CaseNotJson, CaseStoreFailed
from hospital.web.cards import aware
from hospital.web.deps import Cards, Settings, Staff, Store, Templates, client_of
from sync import CaseRefused

__all__ = ["REFUSAL_ACTION_JA", "refusal_ja", "router"]

# A refused case's code (hospital rejections) as staff read it: what went wrong, never
# what the case said (nothing of it was opened, or it could not be read).
REFUSAL_JA: dict[str, str] = {
    "envelope_decryption_failed": (
        "この病院の鍵で開けませんでした（他院宛て、または途中で壊れた可能性）。"
    ),
    "envelope_not_recipient": "この病院宛ての事案ではありませんでした。",
    "envelope_bad_signature": "送信機器の署名が合いません（改ざん、または途中で壊れた可能性）。",
    "envelope_unknown_device": "送信機器がプラットフォームに登録されていないか、失効しています。",
    "envelope_malformed": "事案データの形式が正しくありません。",
    "envelope_unsupported": "対応していない形式の事案データです。",
    "envelope_wrong_key_kind": (
        "この病院に耐量子暗号の鍵（X-Wing）が無いため開けませんでした（鍵の作成・登録を確認）。"
        "鍵ファイルが読めるようになれば自動で受信し、この一覧から消えます。"
    ),
    # The receiving side's own refusals, in the words their typed errors carry.
    **{e.code: e.message_ja for e in (CaseNotJson, CaseNotBundle, CaseInvalid, CaseStoreFailed)},
    CaseRefused.code: CaseRefused.message_ja,
}
REFUSAL_ACTION_JA = "送信元の消防本部に電話で確認してください。"


def refusal_ja(code: str) -> str:
    """``code`` explained for staff; a closure's (``closure:<code>``) says it was one."""
    if code.startswith("closure:"):
        inner = code.removeprefix("closure:")
        why = REFUSAL_JA.get(inner, "内容を確認できませんでした。")
        return f"中止（不搬送）の連絡を受け付けられませんでした: {why}"
    return REFUSAL_JA.get(code, f"事案を受信できませんでした（コード: {clip(code, 60)}）。")


router = APIRouter()


@router.get("/rejections", response_class=HTMLResponse)
def rejections(
    request: Request,
    who: Staff,
    store: Store,
    cards: Cards,
    settings: Settings,
    templates: Templates,
) -> Response:
    """Cases the receiving service refused (retention window): when, from which
    device, why in words for staff, what to do. Never any content."""
    rows = cards.recent_rejections(datetime.now(UTC))
    store.audit(who.username, "rejections_viewed", client=client_of(request))
    items = [
        {"at": aware(r.at), "device_id": r.device_id, "code": r.code, "why": refusal_ja(r.code)}
        for r in rows
    ]
    ctx = {
        "items": items,
        "action": REFUSAL_ACTION_JA,
        "retention_days": max(1, settings.retention_seconds // 86400),
        "csrf": who.csrf,
        "who": who,
    }
    return templates.TemplateResponse(request, "rejections.html", ctx)
