"""The (fictional) card holder: name, address, birth date, sex, security code."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

__all__ = ["Holder", "era_yymmdd", "municipality_of", "my_number_check_digit", "random_my_number"]

# First day of each era (Gregorian). The simulator keeps its own table on purpose: the
# reader's conversion (edge.jpki.era) is tested against it and against fixed examples,
# so one mistake cannot make both sides agree with each other and not with the card.
_ERA_STARTS = (
    (date(2019, 5, 1), 2019),  # 令和
    (date(1989, 1, 8), 1989),  # 平成
    (date(1926, 12, 25), 1926),  # 昭和
    (date(1912, 7, 30), 1912),  # 大正
    (date(1868, 10, 23), 1868),  # 明治
)


def era_yymmdd(d: date) -> str:
    """The birth date as printed on the card face, in the Japanese era: YYMMDD."""
    for start, first_year in _ERA_STARTS:
        if d >= start:
            return f"{d.year - first_year + 1:02d}{d.month:02d}{d.day:02d}"
    raise ValueError("date before the Meiji era")


_FAMILY = (
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
    "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
)  # fmt: skip
_GIVEN_MALE = ("翔太", "大輔", "健一", "誠", "浩二", "拓也", "直樹", "蓮", "悠真", "隆")
_GIVEN_FEMALE = ("陽子", "美咲", "恵子", "さくら", "結衣", "真由美", "花子", "葵", "明美", "凛")
_PLACES = (
    ("東京都", "千代田区", "千代田"),
    ("東京都", "世田谷区", "太子堂"),
    ("神奈川県", "横浜市中区", "山下町"),
    ("大阪府", "大阪市北区", "梅田"),
    ("愛知県", "名古屋市中区", "栄"),
    ("北海道", "札幌市中央区", "北一条西"),
    ("福岡県", "福岡市博多区", "博多駅前"),
    ("宮城県", "仙台市青葉区", "一番町"),
    ("京都府", "京都市左京区", "下鴨"),
    ("広島県", "広島市中区", "紙屋町"),
)
_KANJI_DIGITS = "〇一二三四五六七八九"
_ROMAJI = {
    "東京都": "Tokyo-to", "神奈川県": "Kanagawa-ken", "大阪府": "Osaka-fu", "愛知県": "Aichi-ken",
    "北海道": "Hokkaido", "福岡県": "Fukuoka-ken", "宮城県": "Miyagi-ken", "京都府": "Kyoto-fu",
    "広島県": "Hiroshima-ken", "千代田区": "Chiyoda-ku", "世田谷区": "Setagaya-ku",
    "横浜市中区": "Yokohama-shi Naka-ku", "大阪市北区": "Osaka-shi Kita-ku",
    "名古屋市中区": "Nagoya-shi Naka-ku", "札幌市中央区": "Sapporo-shi Chuo-ku",
    "福岡市博多区": "Fukuoka-shi Hakata-ku", "仙台市青葉区": "Sendai-shi Aoba-ku",
    "京都市左京区": "Kyoto-shi Sakyo-ku", "広島市中区": "Hiroshima-shi Naka-ku",
}  # fmt: skip


def municipality_of(address: str) -> tuple[str, str]:
    """(prefecture, municipality) in romaji, for the CRL partition of the holder's town."""
    for pref, city, _town in _PLACES:
        if address.startswith(pref + city):
            return _ROMAJI[pref], _ROMAJI[city]
    return "Tokyo-to", "Chiyoda-ku"


def my_number_check_digit(first11: str) -> str:
    """Check digit of an individual number (個人番号), as the ordinance defines it."""
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError("need 11 digits")
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return "0" if r <= 1 else str(11 - r)


def random_my_number(rng: random.Random) -> str:
    """A 12-digit number with a valid check digit (fictional: only ever inside a test card)."""
    first = "".join(str(rng.randrange(10)) for _ in range(11))
    return first + my_number_check_digit(first)


@dataclass(frozen=True)
class Holder:
    """The person the virtual card belongs to (all fictional).

    ``name`` is family name, U+3000, given name; ``sex`` is ``"1"`` male,
    ``"2"`` female, ``"9"`` not applicable; ``security_code`` is the 4-digit
    code printed on the card face (part of 照合番号B).
    """

    name: str
    address: str
    birth_date: date
    sex: str
    security_code: str

    def __post_init__(self) -> None:
        if self.sex not in ("1", "2", "9"):
            raise ValueError("sex must be '1', '2' or '9'")
        if len(self.security_code) != 4 or not self.security_code.isdigit():
            raise ValueError("security_code must be 4 digits")

    @classmethod
    def random(cls, rng: random.Random | None = None) -> Holder:
        """A realistic Japanese holder: 佐藤　花子, 東京都千代田区…, born 1930-2012."""
        rng = rng or random.Random()
        sex = rng.choice(("1", "2", "1", "2", "9")) if rng.random() < 0.02 else rng.choice("12")
        given = rng.choice(_GIVEN_FEMALE if sex == "2" else _GIVEN_MALE)
        name = f"{rng.choice(_FAMILY)}\u3000{given}"
        pref, city, town = rng.choice(_PLACES)
        chome = _KANJI_DIGITS[rng.randint(1, 9)]
        address = f"{pref}{city}{town}{chome}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        if rng.random() < 0.3:
            address += f"　コーポ{rng.choice(('桜', '若葉', '緑'))}{rng.randint(101, 505)}号室"
        start = date(1930, 1, 1).toordinal()
        birth = date.fromordinal(rng.randint(start, date(2012, 12, 31).toordinal()))
        code = f"{rng.randrange(10000):04d}"
        return cls(name, address, birth, sex, code)

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex,
            "security_code": self.security_code,
        }

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> Holder:
        return cls(
            d["name"],
            d["address"],
            date.fromisoformat(d["birth_date"]),
            d["sex"],
            d["security_code"],
        )
