"""``kyukyu readers``: list the PC/SC readers."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("readers", help="list card readers / カードリーダー一覧")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.reader import ReaderError
    from edge.reader.pcsc import PcscReaders

    try:
        with PcscReaders() as readers:
            names = readers.list()
    except ReaderError as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
        return 1
    if args.json:
        print(json.dumps({"readers": names}, ensure_ascii=False))
    else:
        for n in names:
            print(n)
        if not names:
            print("カードリーダーが見つかりません / no readers")
    return 0
