"""A MISP that answers the dashboard's login protocol over real HTTP on 127.0.0.1, as MISP answers it.

Rules, each as MISP's (MISP/MISP app/Controller/UsersController.php and AppController.php, v2.5):
- GET /users/login: the login form with hidden `data[_Token][key]` and `data[_Token][fields]` inputs (CakePHP's
  SecurityComponent); POST /users/login without both tokens is refused (400 here: CakePHP black-holes it).
- a good POST answers 302 to /users/routeafterlogin and opens a session (a new session cookie); a bad one
  re-renders the form (200, no Location).
- GET /users/view/me.json is a REST request (IndexFilterComponent::isRest: a .json URL). Without a valid session,
  or for a disabled user, MISP answers 403 (AppController::beforeFilter / __verifyUser throw ForbiddenException; a
  disabled user's session is ended at the next request, the user being re-read at every request). Otherwise the
  JSON of UsersController::__massageUserObject: {"User": {..., "change_pw": bool}, "UserSetting": {name: value} or
  [] when none}. No redirect: beforeFilter returns before its terms/change_pw/news/TOTP redirects for REST requests
  (`if (!$isUserRequest) return true;`), so an account that must change its password gets its JSON too.
- GET /users/logout (an action allowed without login, UsersController::beforeFilter) ends the session.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, jsonify, make_response, redirect, request
from werkzeug.serving import make_server

COOKIE = "MISP-session"


@dataclass
class Account:
    password: str
    dashboard_access: object = True  # None: no UserSetting at all
    change_pw: bool = False
    disabled: bool = False


@dataclass
class MispDouble:
    accounts: dict[str, Account] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    me_requests: int = 0
    logouts: int = 0
    url: str = ""

    def app(self) -> Flask:
        app = Flask("misp-double")
        form_key = secrets.token_hex(8)

        @app.before_request
        def slow() -> None:
            if request.path == "/users/view/me.json":
                self.me_requests += 1  # counted on arrival, answered or not
            time.sleep(self.delay_seconds)

        @app.get("/users/login")
        def login_form():  # type: ignore[no-untyped-def]
            return (
                '<form action="/users/login" method="post">'
                f'<input type="hidden" name="data[_Token][key]" value="{form_key}" autocomplete="off">'
                '<input type="hidden" name="data[_Token][fields]" value="abc%3A" autocomplete="off">'
                '<input name="data[User][email]"><input name="data[User][password]" type="password"></form>'
            )

        @app.post("/users/login")
        def login():  # type: ignore[no-untyped-def]
            if request.form.get("data[_Token][key]") != form_key or not request.form.get("data[_Token][fields]"):
                return "The request has been black-holed", 400
            email = request.form.get("data[User][email]", "")
            account = self.accounts.get(email)
            if account is None or account.disabled or account.password != request.form.get("data[User][password]"):
                return login_form()
            session_id = secrets.token_hex(16)
            self.sessions[session_id] = email
            response = redirect("/users/routeafterlogin")
            response.set_cookie(COOKIE, session_id, httponly=True)
            return response

        @app.get("/users/view/me.json")
        def me():  # type: ignore[no-untyped-def]
            email = self.sessions.get(request.cookies.get(COOKIE, ""))
            account = self.accounts.get(email or "")
            if account is None or account.disabled:
                return jsonify({"name": "Authentication failed.", "message": "Authentication failed."}), 403
            settings = {} if account.dashboard_access is None else {"dashboard_access": account.dashboard_access}
            user = {"email": email, "change_pw": account.change_pw, "disabled": account.disabled}
            return jsonify({"User": user, "UserSetting": settings or []})

        @app.get("/users/logout")
        def logout():  # type: ignore[no-untyped-def]
            self.logouts += 1
            self.sessions.pop(request.cookies.get(COOKIE, ""), None)
            return make_response(redirect("/users/login"))

        return app


@contextmanager
def running(double: MispDouble) -> Iterator[MispDouble]:
    server = make_server("127.0.0.1", 0, double.app(), threaded=True)
    double.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        thread.join(timeout=10)
