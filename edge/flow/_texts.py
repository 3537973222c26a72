"""What the flow tells the paramedic: each failure says what happened and what to do next."""

from __future__ import annotations

from ._model import Text

CARD_REMOVED = Text(
    "カードが離れました。もう一度カードをタッチしてください。",
    "The card left the reader. Tap it again.",
)
NO_READER = Text(
    "カードリーダーが見つかりません。カードなしで続けられます。",
    "No card reader found. You can go on without the card.",
)
CERT_PROBLEM = Text(
    "{problem} サマリーなしで続けます。",
    "{problem} Going on without the summary.",
)
BAD_TIME = Text(
    "測定時刻は 0000〜2359（時分4桁）で入力してください。時刻は変わっていません。",
    "Key the time as HHMM (0000-2359). The time was not changed.",
)
PHONE_NEEDS_PIN = Text(
    "スマートフォンは暗証番号が必要です。本人に暗証番号（4桁）を入力してもらってください。",
    "A phone needs the PIN: ask the patient to key the 4-digit PIN.",
)
PHONE_UNCONSCIOUS = Text(
    "スマートフォンは暗証番号なしでは読めません。サマリーなしで続けます。",
    "A phone cannot be read without its PIN. Going on without the summary.",
)
REFUSED = Text(
    "同意なし: 医療情報は閲覧しません。主訴・バイタルの入力に進みます。",
    "Consent refused: nothing is viewed. Go on with complaint and vitals.",
)
PIN_LAST_TRY = Text(
    "次に間違えるとロックされます（残り1回）。本人に確認のうえ、もう一度入力して「確定」を押してください。",
    "One try left: a wrong PIN locks the card. Check with the patient, key it again and confirm.",
)
PIN_BLOCKED = Text(
    "暗証番号がロックされています。顔写真による確認で続けてください。",
    "The PIN is locked. Go on with the face check.",
)
# 照合番号B: its own words (never 暗証番号: it is not the PIN and has its own counter).
# The usual mistake is the birth date in the Western calendar: the card prints the era.
COLLATION_B_WRONG = Text(
    "照合番号Bが違います。残り{tries}回です。"
    "生年月日は西暦ではなく券面の和暦です（例 昭和55年3月1日→550301）。"
    "有効期限の年・セキュリティコードも券面で確かめてください。",
    "Wrong collation number B: {tries} tries left. The birth date is the era date printed on "
    "the card, not the Western one (Showa 55-03-01 -> 550301). Check the expiry year and "
    "security code on the card too.",
)
COLLATION_B_LAST_TRY = Text(
    "次に間違えると照合番号Bがロックされます（残り1回）。"
    "券面の生年月日（和暦）・有効期限の年・セキュリティコードを確かめ、"
    "もう一度入力して「最後の1回: 確定」を押してください。",
    "One try left: a wrong number locks collation number B. Check the card, key it again "
    "and confirm.",
)
COLLATION_B_BLOCKED = Text(
    "照合番号Bがロックされています（解除は市区町村窓口）。顔写真などほかの方法で本人確認を続けてください。",
    "Collation number B is locked (the municipality unlocks it). Go on with another "
    "identity check (face check).",
)
COLLATION_B_FORMAT = Text(
    "照合番号Bは券面の14桁です: 生年月日（和暦6桁）＋有効期限の西暦の年（4桁）"
    "＋セキュリティコード（4桁）。"
    "西暦の生年月日しか分からないときは、西暦8桁を入力して「西暦から和暦に変換」を押してください。",
    "Collation number B is the 14 digits on the card: era birth date (6) + expiry year (4) + "
    "security code (4). Only the Western date known? Key its 8 digits and press Western to era.",
)
ERA_OFFER = Text(
    "西暦{western}は{era}です。生年月日の6桁は {digits} です。"
    "券面の生年月日と同じなら「{digits}を使う」を押し、続けて有効期限の年とセキュリティコードを入力してください。",
    "{western} is {era} in the Japanese era: the birth-date digits are {digits}. If the card "
    "shows this date, press Use {digits} and key the expiry year and security code.",
)
PIN_OFFLINE = Text(
    "通信できないため暗証番号による確認はできません。顔写真で確認してください。",
    "The platform is unreachable: the PIN proof needs it. Use the face check.",
)
SUMMARY_UNAVAILABLE = Text(
    "プラットフォームに接続できないため、サマリーを表示できません。主訴・バイタルの入力を続けてください。",
    "The platform is unreachable: no summary. Go on with complaint and vitals.",
)
SUMMARY_REJECTED = Text(
    "サマリーを取得できませんでした（{what}）。主訴・バイタルの入力を続けてください。",
    "The summary could not be fetched ({what}). Go on with complaint and vitals.",
)
SUMMARY_NOT_FOUND = Text(
    "この方の医療情報は登録されていません。",
    "No medical record is registered for this person.",
)
DIRECTORY_UNAVAILABLE = Text(
    "病院一覧を取得できません。通信回復後にもう一度押してください。",
    "The hospital list is unavailable. Try again when the network is back.",
)
QUEUED_OFFLINE = Text(
    "通信できません。事案は封緘して端末に保存しました。通信が回復すると自動で送信します。",
    "Unreachable: the case is sealed and queued; it leaves when the network returns.",
)
SENDING = Text(
    "未送信（封緘して保存）: 事案を封緘して端末に保存しました。送信中です。",
    "Not sent yet (sealed and stored): the case is being sent.",
)
SENT = Text(
    "送信済み（プラットフォーム受領）。病院の応答を待っています。",
    "Sent (the platform has it). Waiting for the hospitals' answers.",
)
ALL_DECLINED = Text(
    "受入可の病院がありません。他の病院を選んで再送信してください。",
    "No hospital accepts. Select others and send again.",
)
OUTBOX_FULL = Text(
    "端末の保存領域が一杯です。技術担当者に連絡し、電話で病院に連絡してください。",
    "The device storage is full. Call the hospitals by phone; contact the technician.",
)
# The platform takes post-quantum (v2) cases only and the case was sealed from an older
# hospital list (sync.reseal): sealed again from the new list, or not sent at all.
RESEALED = Text(
    "病院一覧が更新されていたため、事案を新しい暗号方式で封緘し直して送信中です（未送信）。",
    "The hospital list had changed: the case was sealed again with the new encryption and"
    " is being sent (not sent yet).",
)
RESEALED_LEFT_OUT = Text(
    "病院一覧が更新されていたため、事案を新しい暗号方式で封緘し直して送信中です（未送信）。"
    "{hospitals}は新しい暗号方式に未対応のため送信できません。電話で連絡してください。",
    "The hospital list had changed: the case was sealed again with the new encryption and"
    " is being sent. {hospitals} cannot receive it yet: call by phone.",
)
CASE_REFUSED = Text(
    "事案をプラットフォームが受け付けませんでした（暗号方式の更新が必要）。"
    "{hospitals}へは届いていません。電話で病院に連絡してください。",
    "The platform refused the case (its encryption must be updated); it did not reach"
    " {hospitals}. Call the hospitals by phone.",
)
EARLIER_CASE_REFUSED = Text(
    "以前の事案をプラットフォームが受け付けませんでした（暗号方式の更新が必要）。"
    "{hospitals}へは届いていません。電話で病院に連絡してください。",
    "An earlier case was refused by the platform (its encryption must be updated); it did"
    " not reach {hospitals}. Call the hospitals by phone.",
)
DESTINATION_WAITING = Text(
    "搬送先決定は送信待ちです。通信が回復すると自動で病院へ通知します。急ぐ場合は電話で病院に連絡してください。",
    "The destination waits to be sent; it leaves when the network returns. Call if urgent.",
)
DESTINATION_SENT = Text(
    "搬送先決定を病院へ通知しました（プラットフォーム受領）。",
    "The hospital was told it is the destination (the platform has it).",
)
DESTINATION_REFUSED = Text(
    "搬送先決定をプラットフォームが受け付けませんでした（{why}）。電話で病院に連絡してください。",
    "The platform refused the destination ({why}). Call the hospital by phone.",
)
DESTINATION_NOT_QUEUED = Text(
    "搬送先決定を端末に保存できませんでした。電話で病院に連絡し、技術担当者に連絡してください。",
    "The destination could not be stored. Call the hospital; contact the technician.",
)
NOT_SENT_THERE = Text(
    "この病院には事案を送信していません。送信してから搬送先を決めてください。",
    "The case was not sent to this hospital. Send it first.",
)
ABORTED_NOTHING_SENT = Text(
    "事案を中止しました（{reason}）。病院へは何も送信していません。患者情報は端末から消去しました。",
    "Case ended ({reason}). Nothing was sent to any hospital. The device forgot the patient.",
)
ABORTED_NOTIFYING = Text(
    "事案を中止しました（{reason}）。事案を送った病院へ中止を通知します（通信できない間は保存し、回復後に自動送信）。"
    "患者情報は端末から消去しました。",
    "Case ended ({reason}). The hospitals sent the case are told (queued until the network"
    " returns). The device forgot the patient.",
)
ABORTED_NOT_QUEUED = Text(
    "事案を中止しました（{reason}）が、中止の通知を保存できませんでした。事案を送った病院へ電話で連絡してください。",
    "Case ended ({reason}), but the notice could not be stored. Call the hospitals sent the case.",
)
# The platform takes post-quantum (v2) envelopes only: a closure cannot be sealed to a
# hospital without a hybrid key (要電話); the crew tells it by phone.
ABORTED_PHONE = Text(
    "事案を中止しました（{reason}）。{hospitals}は新しい暗号方式に未対応のため、中止を通知できません。"
    "電話で中止を伝えてください。{others}患者情報は端末から消去しました。",
    "Case ended ({reason}). {hospitals} cannot be told (no post-quantum key): call them about"
    " the end. {others_en}The device forgot the patient.",
)
ABORTED_PHONE_OTHERS = Text(
    "他の病院へは中止を通知します（通信できない間は保存し、回復後に自動送信）。",
    "The other hospitals are told (queued until the network returns). ",
)
CLOSURE_RESEALED_LEFT_OUT = Text(
    "病院一覧が更新されていたため、中止の通知を新しい暗号方式で封緘し直しました。"
    "{hospitals}は新しい暗号方式に未対応のため通知できません。電話で中止を伝えてください。",
    "The hospital list had changed: the end of the case was sealed again. {hospitals} cannot"
    " be told: call them about the end.",
)
CLOSURE_REFUSED = Text(
    "中止の通知をプラットフォームが受け付けませんでした（暗号方式の更新が必要）。"
    "{hospitals}へは届いていません。電話で中止を伝えてください。",
    "The platform refused the notice that the case ended (its encryption must be updated);"
    " it did not reach {hospitals}. Call them about the end.",
)
FORGOTTEN_DESTINATION_WAITING = Text(
    "事案を終了し、患者情報を端末から消去しました。搬送先決定は通信回復後に自動で病院へ通知します。",
    "Case closed: the device forgot the patient. The destination leaves when the network returns.",
)
NOTHING_SELECTED = Text("送信先の病院を選んでください。", "Select at least one hospital.")
FORGOTTEN = Text(
    "事案を終了し、患者情報を端末から消去しました。",
    "Case closed: the device forgot the patient.",
)
