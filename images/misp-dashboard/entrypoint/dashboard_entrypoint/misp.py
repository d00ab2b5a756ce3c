"""The dashboard's questions to MISP, each with a timeout and a clear answer.

1. `login`: upstream's protocol (server.py User.misp_login at the pinned commit): GET <misp>/users/login, read the
   form's `data[_Token][...]` values, POST the credentials without following redirects (success is a redirect to
   /users/routeafterlogin), then GET /users/view/me.json and require UserSetting.dashboard_access true or 1.
   Upstream sets no timeout: a MISP that does not answer held the thread forever. me.json is a REST request for
   MISP (IndexFilterComponent::isRest: a .json URL), and AppController::beforeFilter returns before its browser-only
   redirects (terms, change_pw, news, TOTP set-up) for REST requests, so it answers JSON even for an account that
   must change its password; that account is refused here with a message, from User.change_pw in the answer (MISP
   UsersController::__massageUserObject keeps the User row). A session MISP does not know, or a disabled account,
   gets 403 (ForbiddenException in AppController).
2. `check_access`: the same me.json with the MISP session the login opened, to re-check a dashboard session.
3. `logout`: GET /users/logout with that MISP session, when the dashboard session ends, so that the MISP session
   kept in the dashboard's Redis is no longer of use to anyone.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT_SECONDS = 10.0  # per HTTP request to MISP (connect and read)
# the hidden inputs upstream reads from MISP's login form (CakePHP's form tokens, not secrets)
_TOKEN = 'name="data\\[_Token]\\[{}]" value="([^\\s]+)"'  # noqa: S105
BAD_CREDENTIALS = ""  # upstream's login view then shows its own "Username and Password does not match ..." text
NO_ACCESS = "User does not have dashboard access"  # upstream's wording
UNREACHABLE = "MISP cannot be reached for authentication"  # upstream's wording for an SSL error
MUST_CHANGE = "MISP requires a new password for this account: log in to MISP, change it, then sign in here again"


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    message: str
    cookies: dict[str, str] = field(default_factory=dict)


class Access(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # MISP says no: session ended in MISP, account disabled, access removed
    UNKNOWN = "unknown"  # MISP did not answer usefully (timeout, 5xx): nothing can be concluded


def _me(response: requests.Response) -> dict[str, Any] | None:
    """A me.json answer's body; None when it is not MISP's JSON object."""
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _flag(value: object) -> bool:
    # MISP's JSON carries booleans of the User row and settings as true/false, 1/0 or "1"/"0"
    return value is True or value == 1 or value == "1"


def _dashboard_access(body: dict[str, Any]) -> bool:
    """UserSetting.dashboard_access: MISP sends the settings as an object keyed by name, or [] when the user has
    none (app/Controller/UsersController.php, __massageUserObject: array_column of an empty array)."""
    settings = body.get("UserSetting")
    setting = settings.get("dashboard_access", False) if isinstance(settings, dict) else False
    return setting is True or setting == 1  # upstream's test (server.py, User.misp_login)


def _must_change_password(body: dict[str, Any]) -> bool:
    user = body.get("User")
    return isinstance(user, dict) and _flag(user.get("change_pw"))


def login(base_url: str, email: str, password: str, *, verify: bool, timeout: float = TIMEOUT_SECONDS) -> LoginResult:
    with requests.Session() as session:  # closed at the end: no connection to MISP is left open
        session.verify = verify
        return _login(session, base_url, email, password, timeout)


def _login(session: requests.Session, base_url: str, email: str, password: str, timeout: float) -> LoginResult:
    login_page = f"{base_url}/users/login"
    verify = bool(session.verify)
    try:
        page = session.get(login_page, timeout=timeout)
        fields = re.search(_TOKEN.format("fields"), page.text)
        key = re.search(_TOKEN.format("key"), page.text)
        if fields is None or key is None:
            return LoginResult(False, "MISP's login page has no login form (is password login enabled in MISP?)")
        data = {
            "_method": "POST",
            "data[_Token][key]": key.group(1),
            "data[_Token][fields]": fields.group(1),
            "data[_Token][unlocked]": "",
            "data[User][email]": email,
            "data[User][password]": password,
        }
        debug = re.search(_TOKEN.format("debug"), page.text)
        if debug is not None:  # only present when MISP runs in debug mode
            data["data[_Token][debug]"] = debug.group(1)
        posted = session.post(login_page, data=data, allow_redirects=False, timeout=timeout)
        if "/users/routeafterlogin" not in posted.headers.get("Location", ""):
            return LoginResult(False, BAD_CREDENTIALS)
        me = session.get(f"{base_url}/users/view/me.json", allow_redirects=False, timeout=timeout)
    except requests.Timeout:
        return LoginResult(False, f"{UNREACHABLE} (no answer within {timeout:g} s)")
    except requests.RequestException:
        return LoginResult(False, UNREACHABLE)
    body = _me(me)
    cookies = session.cookies.get_dict()
    if body is None:
        logout(base_url, cookies, verify=verify, timeout=timeout)
        return LoginResult(False, f"MISP answered HTTP {me.status_code} for the account's settings: try again later")
    if not _dashboard_access(body):
        logout(base_url, cookies, verify=verify, timeout=timeout)
        return LoginResult(False, NO_ACCESS)
    if _must_change_password(body):
        logout(base_url, cookies, verify=verify, timeout=timeout)
        return LoginResult(False, MUST_CHANGE)
    return LoginResult(True, "", cookies)


def check_access(
    base_url: str, cookies: Mapping[str, str], *, verify: bool, timeout: float = TIMEOUT_SECONDS
) -> tuple[Access, dict[str, str]]:
    """Whether the MISP session behind a dashboard session still has dashboard access; and its cookies now."""
    with requests.Session() as session:
        session.verify = verify
        session.cookies.update(dict(cookies))
        return _check_access(session, base_url, cookies, timeout)


def _check_access(
    session: requests.Session, base_url: str, cookies: Mapping[str, str], timeout: float
) -> tuple[Access, dict[str, str]]:
    try:
        me = session.get(f"{base_url}/users/view/me.json", allow_redirects=False, timeout=timeout)
    except requests.RequestException:
        return Access.UNKNOWN, dict(cookies)
    now: dict[str, Any] = session.cookies.get_dict()
    if me.is_redirect or me.status_code in (401, 403):
        return Access.DENIED, now  # MISP's session is over, or the account is disabled (403), or a login page
    body = _me(me)
    if body is None:
        return Access.UNKNOWN, now  # 5xx, a proxy's error page: nothing can be concluded
    allowed = _dashboard_access(body) and not _must_change_password(body)
    return (Access.ALLOWED if allowed else Access.DENIED), now


def logout(base_url: str, cookies: Mapping[str, str], *, verify: bool, timeout: float = TIMEOUT_SECONDS) -> bool:
    """End a MISP session (MISP UsersController::logout, allowed to any caller); whether MISP answered."""
    if not cookies:
        return True
    with requests.Session() as session:
        session.verify = verify
        session.cookies.update(dict(cookies))
        try:
            session.get(f"{base_url}/users/logout", allow_redirects=False, timeout=timeout)
        except requests.RequestException:
            return False
    return True
