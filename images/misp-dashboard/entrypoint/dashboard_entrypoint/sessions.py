"""Dashboard sessions that end: a maximum age, a periodic re-check against MISP, and a real logout.

Upstream (server.py at the pinned commit) logs a user in once against MISP, then its flask-login user_loader
trusts the signed cookie for as long as it exists, and /logout only removes the user from the cookie, so a copy of
the cookie keeps working. Here every login opens a server-side session record in Redis, named by a random id that
the cookie carries:

- the record expires after the maximum age (upstream's [Auth] permanent_session_lifetime, in days), and the cookie
  is useless without it;
- at most every `recheck_seconds`, one request of the session (any replica: a Redis lock) asks MISP's
  /users/view/me.json with the MISP session the login opened; MISP saying no (its session ended, the account was
  disabled or lost dashboard_access) deletes the record; MISP not answering keeps it until the next check;
- /logout deletes the record, so the old cookie no longer works anywhere.

Whenever a record is deleted (logout, MISP saying no), the MISP session it holds is logged out of MISP as well: the
dashboard's Redis holds live MISP web sessions of its users, and none outlives the dashboard session it belongs to.

Nothing of upstream is edited: its module-level `login_user`/`logout_user` and `User.misp_login` are replaced in its
server module (its views call them by those names) and a before_request hook clears a session that is no longer
valid, so that upstream's own login_required sends the user to the login form.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard_entrypoint import misp

SESSION_ID = "dashboard_session"  # the key in Flask's signed cookie
USER_ID = "_user_id"  # flask-login 0.6.3 (src/flask_login/utils.py, login_user) keeps the user's id under this key
_PREFIX = "dashboard_entrypoint:session:"


@dataclass(frozen=True)
class SessionPolicy:
    max_age_seconds: int
    recheck_seconds: int = 300
    misp_timeout_seconds: float = misp.TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, cfg: Any) -> SessionPolicy:
        return cls(max_age_seconds=cfg.getint("Auth", "permanent_session_lifetime") * 86400)


def _log(line: str) -> None:
    print(f"misp-dashboard: sessions: {line}", file=sys.stderr, flush=True)


class SessionStore:
    """The server-side records: `<prefix><id>` (user and MISP cookies, expiring) and `<prefix><id>:checked`."""

    def __init__(
        self,
        redis_client: Any,
        policy: SessionPolicy,
        misp_url: str,
        verify: bool,
        check: Callable[..., tuple[misp.Access, dict[str, str]]] = misp.check_access,
        misp_logout: Callable[..., bool] = misp.logout,
    ) -> None:
        self.redis = redis_client
        self.policy = policy
        self.misp_url = misp_url
        self.verify = verify
        self.check = check
        self.misp_logout = misp_logout

    def open(self, user: str, cookies: dict[str, str]) -> str:
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"user": user, "cookies": cookies})
        self.redis.set(_PREFIX + session_id, record, ex=self.policy.max_age_seconds)
        # just checked at login: the first re-check is due one interval later
        self.redis.set(f"{_PREFIX}{session_id}:checked", "1", ex=self.policy.recheck_seconds)
        return session_id

    def close(self, session_id: str) -> None:
        """Delete the record, then end the MISP session it held."""
        raw = self.redis.get(_PREFIX + session_id)
        self.redis.delete(_PREFIX + session_id, f"{_PREFIX}{session_id}:checked")
        if raw is None:
            return
        record = json.loads(raw)
        if not self.misp_logout(
            self.misp_url, record["cookies"], verify=self.verify, timeout=self.policy.misp_timeout_seconds
        ):
            _log(f"MISP did not answer the logout of {record['user']}'s MISP session")

    def valid(self, session_id: str) -> bool:
        """Whether the session may go on; re-checks it with MISP when a check is due."""
        raw = self.redis.get(_PREFIX + session_id)
        if raw is None:
            return False  # logged out, expired, or revoked
        if not self.redis.set(f"{_PREFIX}{session_id}:checked", "1", ex=self.policy.recheck_seconds, nx=True):
            return True  # checked less than recheck_seconds ago (by any replica)
        record = json.loads(raw)
        access, cookies = self.check(
            self.misp_url, record["cookies"], verify=self.verify, timeout=self.policy.misp_timeout_seconds
        )
        if access is misp.Access.DENIED:
            _log(f"MISP no longer grants {record['user']} dashboard access: session ended")
            self.close(session_id)
            return False
        if access is misp.Access.UNKNOWN:
            wait = self.policy.recheck_seconds
            _log(f"MISP did not answer the access check of {record['user']}; next try in {wait} s")
        else:
            record["cookies"] = cookies
            self.redis.set(_PREFIX + session_id, json.dumps(record), keepttl=True)
        return True


def install(server: Any, store: SessionStore) -> Callable[[], Callable[[], bool]]:
    """Wire the store into upstream's server module; returns the validity check that open streams use."""
    from flask import session

    original_login_user = server.login_user
    original_logout_user = server.logout_user

    def misp_login(user: Any) -> tuple[bool | None, str]:
        result = misp.login(
            store.misp_url, user.id, user.password, verify=store.verify, timeout=store.policy.misp_timeout_seconds
        )
        user.dashboard_misp_cookies = result.cookies
        return (True, "") if result.ok else (None, result.message)

    def login_user(user: Any, *args: Any, **kwargs: Any) -> Any:
        done = original_login_user(user, *args, **kwargs)
        if done:
            session[SESSION_ID] = store.open(str(user.id), getattr(user, "dashboard_misp_cookies", {}))
        return done

    def logout_user() -> Any:
        session_id = session.pop(SESSION_ID, None)
        if session_id is not None:
            store.close(str(session_id))
        return original_logout_user()

    def end_invalid_session() -> None:
        if USER_ID not in session:
            return
        session_id = session.get(SESSION_ID)
        if session_id is None or not store.valid(str(session_id)):
            session.clear()  # anonymous from here on: upstream's login_required redirects to /login

    def stream_check() -> Callable[[], bool]:
        session_id = session.get(SESSION_ID)
        return lambda: session_id is not None and store.valid(str(session_id))

    server.User.misp_login = misp_login
    server.login_user = login_user
    server.logout_user = logout_user
    server.app.before_request(end_invalid_session)
    return stream_check
