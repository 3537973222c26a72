"""A hospital's staff member as a script: signed in to the dashboard over HTTP.

Every HTTP call the script makes is in ``DashboardStaff``, against the dashboard's
staff API (docs/hospital.md, "The staff API"): ``GET /api/session`` gives the sign-in
token, the form ``POST /login`` signs in as a person does, ``GET /api/session`` then
gives the session's CSRF token, and ``POST /api/cases/{id}/answer`` answers with it in
``X-CSRF-Token``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STAFF_PASSWORD", "DashboardStaff", "totp_now"]

#: The password of the staff accounts test worlds create (``kyukyu hospital user add``).
STAFF_PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's


def totp_now(secret: str) -> str:
    """The current sign-in code for a staff account's TOTP secret (``kyukyu demo totp``)."""
    import pyotp

    return str(pyotp.TOTP(secret).now())


class DashboardStaff:
    """One signed-in account on a hospital's dashboard (``url``)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        totp_secret: str,
        *,
        verify: Any = True,
    ) -> None:
        """``verify``: httpx's (a CA file for a dashboard with a certificate of its own)."""
        import ssl

        import httpx

        if isinstance(verify, str):
            # A self-signed certificate pinned as its own CA: the host name is not the trust.
            verify = ssl.create_default_context(cafile=verify)
            verify.check_hostname = False
        self.client = httpx.Client(base_url=url, follow_redirects=False, timeout=10, verify=verify)
        try:
            session = self.client.get("/api/session")
            session.raise_for_status()
            r = self.client.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "totp": totp_now(totp_secret),
                    "csrf": str(session.json()["login_csrf"]),
                },
            )
            if r.status_code != 303:
                raise RuntimeError(f"dashboard sign-in refused ({r.status_code})")
            me = self.client.get("/api/session")
            me.raise_for_status()
            self._csrf = str(me.json()["csrf"])
        except BaseException:
            self.client.close()
            raise

    def case_page(self, case_id: str) -> str | None:
        """The case's page as staff see it, None while the hospital does not have it."""
        r = self.client.get(f"/cases/{case_id}")
        return r.text if r.status_code == 200 else None

    def answer(self, case_id: str, answer: str, reason: str | None = None) -> None:
        """Accept or decline (with a reason) the case, as the answer buttons do."""
        body: dict[str, Any] = {"answer": answer}
        if reason:
            body["reason"] = reason
        r = self.client.post(
            f"/api/cases/{case_id}/answer", json=body, headers={"X-CSRF-Token": self._csrf}
        )
        if r.status_code != 200:
            raise RuntimeError(f"the dashboard did not take the answer ({r.status_code})")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> DashboardStaff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
