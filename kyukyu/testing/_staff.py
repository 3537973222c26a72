"""A hospital's staff member as a script: signed in to the dashboard over HTTP.

Every HTTP call the script makes is in ``DashboardStaff``. It signs in the way the
browser's form does (the sign-in token is the one the ``/login`` answer sets as its
cookie) and answers through the dashboard's answer route (the session's token is the
one the page carries for its own script, ``data-csrf``, read with an HTML parser).
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

__all__ = ["DashboardStaff", "totp_now"]


def totp_now(secret: str) -> str:
    """The current sign-in code for a staff account's TOTP secret (``kyukyu demo totp``)."""
    import pyotp

    return str(pyotp.TOTP(secret).now())


class _PageToken(HTMLParser):
    """The session's CSRF token a dashboard page carries (``<main data-csrf=…>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.token is None and tag == "main":
            self.token = dict(attrs).get("data-csrf") or None


class DashboardStaff:
    """One signed-in account on a hospital's dashboard (``url``)."""

    def __init__(self, url: str, username: str, password: str, totp_secret: str) -> None:
        import httpx

        from hospital.web import LOGIN_COOKIE

        self.client = httpx.Client(base_url=url, follow_redirects=False, timeout=10)
        try:
            self.client.get("/login").raise_for_status()
            r = self.client.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "totp": totp_now(totp_secret),
                    "csrf": self.client.cookies.get(LOGIN_COOKIE) or "",
                },
            )
            if r.status_code != 303:
                raise RuntimeError(f"dashboard sign-in refused ({r.status_code})")
        except BaseException:
            self.client.close()
            raise

    def case_page(self, case_id: str) -> str | None:
        """The case's page as staff see it, None while the hospital does not have it."""
        r = self.client.get(f"/cases/{case_id}")
        return r.text if r.status_code == 200 else None

    def answer(self, case_id: str, answer: str, reason: str | None = None) -> None:
        """Accept or decline (with a reason) the case, as the answer buttons do."""
        parser = _PageToken()
        parser.feed(self.case_page(case_id) or "")
        if parser.token is None:
            raise RuntimeError("no case page to answer on")
        data: dict[str, Any] = {"csrf": parser.token, "answer": answer}
        if reason:
            data["reason"] = reason
        r = self.client.post(
            f"/cases/{case_id}/answer", data=data, headers={"X-Requested-With": "fetch"}
        )
        if r.status_code != 200:
            raise RuntimeError(f"the dashboard did not take the answer ({r.status_code})")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> DashboardStaff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
