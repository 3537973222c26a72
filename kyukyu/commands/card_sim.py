"""``kyukyu card-sim``: issue, serve and revoke virtual My Number cards (test material).

kyukyu card-sim issue --ca DIR --out CARD.json [--profile card|android|iphone] [--pin 1234]
kyukyu card-sim serve CARD.json --vpcd [--port 35963] [--quirk read_chunk=64 ...]
kyukyu card-sim serve CARD.json --nfc-udp PORT
kyukyu card-sim revoke --ca DIR SERIAL
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    top = sub.add_parser("card-sim", help="virtual My Number cards / 仮想マイナンバーカード")
    top_sub = top.add_subparsers(dest="card_sim_command", metavar="COMMAND")
    top.set_defaults(func=lambda _a: top.print_help() or EXIT_USAGE)

    p = top_sub.add_parser("issue", help="issue a virtual card from a test CA (created if missing)")
    p.add_argument("--ca", required=True, type=Path, help="test CA directory")
    p.add_argument("--out", required=True, type=Path, help="card file to write (JSON)")
    p.add_argument(
        "--profile",
        choices=("card", "android", "iphone"),
        default="card",
        help="token profile of the virtual card",
    )
    p.add_argument("--pin", default="1234", help="user-auth PIN (4 digits)")
    p.add_argument("--sign-password", default="ABC123", help="signing password (6-16 A-Z0-9)")
    p.add_argument("--text-pin", help="text AP PIN (default: the same as --pin)")
    p.add_argument("--no-signing-cert", action="store_true", help="no signing certificate")
    p.add_argument("--seed", type=int, help="seed for the fictional holder")
    p.add_argument("--not-before", type=datetime.fromisoformat, help="ISO date-time")
    p.add_argument("--not-after", type=datetime.fromisoformat, help="ISO date-time")
    p.set_defaults(func=run_issue)

    p = top_sub.add_parser("serve", help="plug a card file into pcscd (vpcd) or nfcpy udp")
    p.add_argument("card", type=Path, help="card file (retry counters are written back)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--vpcd", action="store_true", help="connect to vpcd (pcscd)")
    how.add_argument("--nfc-udp", type=int, metavar="PORT", help="nfcpy udp driver port")
    p.add_argument("--host", default="127.0.0.1", help="host of vpcd (or of the nfcpy udp driver)")
    p.add_argument("--port", type=int, default=35963, help="vpcd port (35963 or 35964)")
    p.add_argument(
        "--quirk",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="read_chunk=N, le_correction_at_eof=1, chain_61xx=N, link_kbps=106|212|424, "
        "apdu_delay_s=S, remove_after_apdus=N",
    )
    p.add_argument(
        "--retap-after",
        type=float,
        default=1.0,
        metavar="S",
        help="after a removal by the card, put it back after S seconds (negative: never)",
    )
    p.add_argument("--duration", type=float, help="stop after S seconds (default: until ^C)")
    p.set_defaults(func=run_serve)

    p = top_sub.add_parser("revoke", help="revoke a certificate serial in the test CA")
    p.add_argument("--ca", required=True, type=Path, help="test CA directory")
    p.add_argument("serial", help="serial number (decimal, or hex with 0x)")
    p.set_defaults(func=run_revoke)


def _fail(code: str, ja: str, en: str) -> int:
    print(
        json.dumps(
            {"error": {"code": code, "message_ja": ja, "message_en": en}}, ensure_ascii=False
        )
    )
    return EXIT_ERROR


def run_issue(args: argparse.Namespace) -> int:
    from edge.card_sim import Holder, TestCA

    try:
        ca = TestCA.open_or_create(args.ca)
        rng = random.Random(args.seed)  # fictional holder; not a secret
        image = ca.issue_card(
            profile=args.profile,
            pin=args.pin,
            sign_password=args.sign_password,
            text_pin=args.text_pin,
            holder=Holder.random(rng),
            not_before=args.not_before,
            not_after=args.not_after,
            signing_cert=not args.no_signing_cert,
            rng=rng,
        )
    except ValueError as exc:
        return _fail("bad_argument", "指定内容が正しくありません。", str(exc))
    image.save(args.out)
    cert = image.auth_certificate
    print(
        json.dumps(
            {
                "card": str(args.out),
                "ca": str(args.ca),
                "profile": image.profile,
                "auth_serial": cert.serial_number,
                "auth_not_after": cert.not_valid_after_utc.isoformat(),
                # Fictional test data: the 照合番号B a tester keys in.
                "collation_b": image.collation_b,
            },
            ensure_ascii=False,
        )
    )
    return EXIT_OK


def _parse_quirks(items: list[str]) -> Any:
    from edge.card_sim import Quirks

    kinds = {f.name: f.type for f in fields(Quirks)}
    values: dict[str, Any] = {}
    for item in items:
        name, _, raw = item.partition("=")
        if name not in kinds:
            raise ValueError(f"unknown quirk {name!r} (known: {', '.join(kinds)})")
        kind = str(kinds[name])
        if "bool" in kind:
            values[name] = raw.lower() in ("1", "true", "yes", "")
        elif "float" in kind:
            values[name] = float(raw)
        else:
            values[name] = int(raw)
    return Quirks(**values)


def run_serve(args: argparse.Namespace) -> int:
    from edge.card_sim import CardImage, NfcUdpFrontEnd, VirtualCard, VpcdFrontEnd

    try:
        quirks = _parse_quirks(args.quirk)
        image = CardImage.load(args.card)
    except (ValueError, OSError, KeyError) as exc:
        return _fail("bad_argument", "カードファイルまたは指定内容が正しくありません。", str(exc))
    card = VirtualCard(image, quirks, path=args.card)
    stop = threading.Event()

    def retap(present: bool) -> None:
        if not present and args.retap_after >= 0 and not stop.is_set():
            threading.Timer(args.retap_after, card.insert).start()

    card.on_presence(retap)
    fe: VpcdFrontEnd | NfcUdpFrontEnd
    if args.vpcd:
        fe = VpcdFrontEnd(card, args.host, args.port)
        where = f"vpcd {args.host}:{args.port}"
    else:
        fe = NfcUdpFrontEnd(card, args.host, args.nfc_udp)
        where = f"nfcpy udp:{args.host}:{args.nfc_udp}"
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fe.start()
    print(json.dumps({"serving": str(args.card), "via": where}), flush=True)
    stop.wait(args.duration)
    stop.set()
    fe.stop()
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    from edge.card_sim import TestCA

    try:
        serial = int(args.serial, 0)
        ca = TestCA.load(args.ca)
    except (ValueError, OSError) as exc:
        return _fail("bad_argument", "指定内容が正しくありません。", str(exc))
    ca.revoke(serial)
    out: dict[str, Any] = {"revoked": serial, "revoked_serials": sorted(ca.revoked_serials)}
    try:
        from edge.jpki.revocation import RevocationSnapshot
    except ImportError:  # pragma: no cover - the edge.jpki package ships with the project
        pass
    else:
        # The local snapshot format `kyukyu card read --revoked FILE` reads.
        path = Path(args.ca) / "revoked.snapshot"
        RevocationSnapshot.from_serials(ca.revoked_serials).save(path)
        out["snapshot"] = str(path)
    print(json.dumps(out))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(EXIT_USAGE)
