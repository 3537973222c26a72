"""``kyukyu card read``: wait for a card, read and verify it, print one JSON object.

The object says per part what was verified and why not (``certificate.status``,
``pin_proof``, ``attributes``, ``card_presence``, ``photo``: see
``edge.jpki.read``). Every non-zero exit carries ``{"error": {"code",
"message_ja", "message_en"}}`` (the most important reason); a read that got as
far as the certificate prints the whole result beside it. Exit codes:

==  ======================================================================
0   everything asked for is verified (certificate trusted)
1   nothing usable was read (not a My Number card, card removed before the
    certificate, no card, Android token without PIN ...): ``error`` only
2   configuration (roots directory, revocation snapshot, arguments)
3   internal error (a bug): ``error`` only
4   the certificate is not trusted: ``certificate.status`` is ``untrusted``
    (expired, revoked, wrong policy ...) or ``not_verified_on_device`` (its
    root is not pinned on this device: the platform can check it)
5   the certificate is trusted but a part asked for is not verified: wrong
    PIN (``pin_proof.status`` ``failed``), attributes ``not_verified`` (e.g.
    EF 0004 from a CA key that is not pinned) or ``failed`` ...
6   a part was proved wrong and refused: ``attributes.status`` ``tampered``
130 cancelled
==  ======================================================================

Nothing about the card is logged; the result goes to stdout only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from errbase.paths import JPKI_ROOTS_DIR

if TYPE_CHECKING:
    from edge.jpki.read import CardReadResult, ReadOptions
    from edge.reader import Connection

# KYUKYU_JPKI_ROOTS overrides it (kyukyu.cli.ENV_NAMES: read when the command runs).
DEFAULT_ROOTS = str(JPKI_ROOTS_DIR)

EXIT_OK, EXIT_CARD, EXIT_CONFIG, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_UNTRUSTED, EXIT_PARTIAL, EXIT_TAMPERED = 4, 5, 6

EXIT_CODES_HELP = """exit codes:
  0  everything asked for is verified (certificate trusted)
  1  nothing usable was read (error only)
  2  configuration error
  3  internal error
  4  certificate not trusted (untrusted, or not_verified_on_device: root not pinned here)
  5  certificate trusted, a part asked for not verified (wrong PIN, unpinned EF 0004 CA ...)
  6  a part was proved wrong and refused (attributes tampered)
  130 cancelled"""

log = logging.getLogger("kyukyu.card")

_INTERNAL = {
    "code": "internal_error",
    "message_ja": "内部エラーが発生しました。もう一度カードをタッチしてください。",
    "message_en": "Internal error while reading the card.",
}
_INTERRUPTED = {
    "code": "cancelled",
    "message_ja": "読み取りを中止しました。",
    "message_en": "The read was cancelled.",
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    card = sub.add_parser("card", help="read a My Number card / マイナンバーカードの読み取り")
    card_sub = card.add_subparsers(dest="card_command", metavar="COMMAND")
    card.set_defaults(func=lambda _a: card.print_help() or EXIT_CONFIG)

    p = card_sub.add_parser(
        "read",
        help="wait for a card, read and verify it",
        description="Wait for a card, read and verify it; print one JSON object saying per "
        "part what was verified.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--reader", help="PC/SC reader name (or prefix); default: any reader")
    p.add_argument(
        "--transport",
        choices=("pcsc", "nfc"),
        default="pcsc",
        help="pcsc (pcscd readers) or nfc (nfcpy)",
    )
    p.add_argument(
        "--nfc-path", default="usb:054c:06c3", help="nfcpy path (usb:054c:06c3, udp:HOST:PORT)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a card")
    p.add_argument(
        "--pin-stdin", action="store_true", help="read the 4-digit PIN from stdin (one line)"
    )
    p.add_argument(
        "--collation-b",
        metavar="DIGITS",
        help="照合番号B, 14 digits as printed on the card: the birth date in the Japanese era "
        "YYMMDD (昭和55年2月17日 -> 550217; `kyukyu card era 1980-02-17` converts a Western "
        "date), the card's expiry year (4 digits), the security code (4 digits). Opens the "
        "four attributes without the PIN",
    )
    p.add_argument(
        "--challenge",
        metavar="HEX",
        help="with --pin-stdin: the (server) challenge the auth key signs; default random",
    )
    p.add_argument(
        "--photo", action="store_true", help="with --collation-b: also read the card photo"
    )
    p.add_argument(
        "--attributes-with-pin",
        action="store_true",
        help="open the four attributes with the PIN (the text AP's PIN)",
    )
    p.add_argument(
        "--allow-last-try",
        action="store_true",
        help="confirmed: try the PIN even when only one try is left",
    )
    p.add_argument(
        "--roots", default=DEFAULT_ROOTS, help=f"trusted roots (default {DEFAULT_ROOTS})"
    )
    p.add_argument(
        "--allow-test-roots",
        action="store_true",
        help="TEST MODE: accept roots that are not pinned",
    )
    p.add_argument("--revoked", metavar="FILE", help="revocation snapshot file")
    p.add_argument("--json", action="store_true", help="print JSON (the only output format)")
    p.set_defaults(func=run_read)

    e = card_sub.add_parser(
        "era",
        help="convert a Western birth date to the era form of 照合番号B (1980-02-17 -> 550217)",
    )
    e.add_argument("date", help="the birth date, YYYY-MM-DD or YYYYMMDD")
    e.set_defaults(func=run_era)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _error(exc: Any) -> dict[str, Any]:
    return {"error": exc.to_dict()}


def _options(args: argparse.Namespace, pin: str | None) -> ReadOptions:
    from edge.jpki import MalformedData
    from edge.jpki.read import ReadOptions
    from edge.jpki.revocation import RevocationSnapshot
    from edge.jpki.trust import TrustStore

    challenge = None
    if args.challenge:
        try:
            challenge = bytes.fromhex(args.challenge)
        except ValueError as exc:
            raise MalformedData("--challenge is not hex") from exc
    store = TrustStore.from_directory(args.roots, allow_test_roots=args.allow_test_roots)
    revocation = RevocationSnapshot.load(args.revoked) if args.revoked else None
    return ReadOptions(
        trust=store,
        revocation=revocation,
        pin=pin,
        collation_b=args.collation_b,
        attributes_with_pin=args.attributes_with_pin,
        allow_last_try=args.allow_last_try,
        read_photo=args.photo,
        challenge=challenge,
    )


def _connect(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[Connection, str]:
    """Wait for a card on the chosen transport; ``stack`` closes reader and card."""
    if args.transport == "nfc":
        from edge.reader.nfc import NfcReader

        nfc_reader = stack.enter_context(NfcReader(args.nfc_path))
        conn: Connection = nfc_reader.wait_for_card(timeout=args.timeout)
        stack.callback(conn.close)
        return conn, args.nfc_path
    from edge.reader.pcsc import PcscReaders

    readers = stack.enter_context(PcscReaders())
    pconn = readers.wait_for_card(args.reader, timeout=args.timeout)
    stack.callback(pconn.close)
    return pconn, pconn.reader


def run_read(args: argparse.Namespace) -> int:
    """The ``card read`` command; returns the exit code."""
    from edge.jpki import JpkiError
    from edge.jpki.read import read_card
    from edge.reader import ApduChannel, ReaderError

    pin: str | None = None
    if args.pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    try:
        options = _options(args, pin)
    except JpkiError as exc:
        _emit(_error(exc))
        return EXIT_CONFIG
    try:
        with contextlib.ExitStack() as stack:
            conn, reader = _connect(args, stack)
            started = time.perf_counter()
            result = read_card(ApduChannel(conn), options)
            elapsed = time.perf_counter() - started
    except (JpkiError, ReaderError) as exc:
        _emit(_error(exc))
        return EXIT_CARD
    except KeyboardInterrupt:
        _emit({"error": _INTERRUPTED})
        return EXIT_INTERRUPTED
    except Exception as exc:
        # A bug, not a card problem: keep the one-JSON-object contract, and log the
        # exception type only (its message could quote card data).
        log.error("card read failed with %s", type(exc).__name__)
        _emit({"error": _INTERNAL})
        return EXIT_INTERNAL
    out = result.to_dict()
    out["transport"] = args.transport
    out["reader"] = reader
    out["elapsed_ms"] = round(elapsed * 1000, 1)
    rc = exit_code(result)
    error = result.first_error()
    if rc != EXIT_OK and error is not None:
        out["error"] = error.to_dict()
    _emit(out)
    return rc


def run_era(args: argparse.Namespace) -> int:
    """``card era YYYY-MM-DD``: the birth-date part of 照合番号B, as printed on the card."""
    from edge.jpki import InvalidBirthDate
    from edge.jpki.era import era_of_birth_date

    try:
        era = era_of_birth_date(args.date)
    except InvalidBirthDate as exc:
        _emit({"error": exc.to_dict()})
        return EXIT_CONFIG
    _emit(
        {
            "date": args.date,
            "era": era.era.kanji,
            "era_romaji": era.era.romaji,
            "era_year": era.year,
            "printed": str(era),
            "collation_b_birth": era.yymmdd,
        }
    )
    return EXIT_OK


def exit_code(result: CardReadResult) -> int:
    """The documented exit code of a read that got as far as the certificate."""
    if result.tampered:
        return EXIT_TAMPERED
    if not result.certificate_check.trusted:
        return EXIT_UNTRUSTED
    if not result.complete:
        return EXIT_PARTIAL
    return EXIT_OK
