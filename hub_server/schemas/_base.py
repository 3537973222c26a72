"""Field types and the strict base every request body shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


# Free text: anything but NUL (PostgreSQL text cannot hold it).
TEXT = r"^[^\x00]*$"


HospitalId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


Ed25519Key = Field(
    min_length=43,
    max_length=44,
    pattern=r"^[A-Za-z0-9_-]{43}=?$",
    description="32-byte Ed25519 public key, base64url",
)


RegionCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


Region = Field(
    default=None,
    min_length=1,
    max_length=40,
    pattern=r"^[A-Za-z0-9_.-]+$",
    description="the region (a prefecture or MC area code) the operator puts it in",
)


X25519Key = Field(
    min_length=43,
    max_length=44,
    pattern=r"^[A-Za-z0-9_-]{43}=?$",
    description="32-byte X25519 public key (HPKE), base64url",
)


XWingKeyText = Annotated[
    str,
    Field(
        min_length=1622,
        max_length=1622,
        pattern=r"^[A-Za-z0-9_-]{1622}$",
        description="1,216-byte X-Wing (MLKEM768-X25519) public key (HPKE, envelope v2), base64url",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message_ja: str
    message_en: str


class ErrorBody(BaseModel):
    error: ErrorDetail
