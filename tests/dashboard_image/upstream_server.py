"""Stand-in for upstream's server.py (MISP/misp-dashboard 3c11250), copied into a test app directory as server.py.

It has the names the image's WSGI wrapper relies on, shaped as upstream's: module-level `cfg` read from
config/config.cfg, `app`, `auth_host`, `auth_ssl_verify`, `redis_server_log`/`redis_server_map` (decode_responses),
`live_helper.CHANNEL`, `EventMessage(...).to_json_ev()` ('' for a message the `filters` cookie rejects, as upstream's
LogItem.get_row/EventMessage.to_json_ev), `contributor_helper.getContributorFromRedis(org)`, and flask-login as
upstream uses it (server.py lines 88-195): a real `LoginManager` with session protection "strong", `User(UserMixin)`
with `misp_login()`, a user_loader that trusts the id in the session, an unauthorized handler redirecting to the
login form, and `login_user`/`logout_user` imported into the module, where its views look them up. Its views: the
login form, /logout and the four Server-Sent-Events routes (generators called by their global names; /_logs wrapped
in stream_with_context). Upstream's streams block in pubsub.listen(), as here. Written for these tests; the
pinned upstream file is the reference for each shape.
"""

import configparser
import json
import os
import types

import redis
import requests
from flask import Flask, Response, redirect, request, stream_with_context, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

configfile = os.path.join(os.path.dirname(os.path.realpath(__file__)), "config/config.cfg")  # noqa: PTH118, PTH120
cfg = configparser.ConfigParser()
cfg.read(configfile)
auth_host = cfg.get("Auth", "misp_fqdn")
auth_ssl_verify = cfg.getboolean("Auth", "ssl_verify")
app = Flask(__name__)
app.config.update(SECRET_KEY=cfg.get("Auth", "session_secret"))


def _client(db_section):
    return redis.StrictRedis(
        host=cfg.get("RedisGlobal", "host"),
        port=cfg.getint("RedisGlobal", "port"),
        db=cfg.getint(db_section, "db"),
        decode_responses=True,
    )


redis_server_log = _client("RedisLog")
redis_server_map = _client("RedisMap")
live_helper = types.SimpleNamespace(CHANNEL=cfg.get("RedisLog", "channel"))
contributor_helper = types.SimpleNamespace(getContributorFromRedis=lambda org: {"org": org})
login_manager = LoginManager(app)
login_manager.session_protection = "strong"


class EventMessage:
    def __init__(self, msg, filters):
        self.msg = json.loads(msg)
        # upstream's LogItem.pass_filter: each field the filters name must be present and equal the filter's value
        # (or differ from it, for a value with "!")
        passes = all(
            self.msg.get(name) is not None
            and ((self.msg[name] != value.strip("!")) if "!" in value else (self.msg[name] == value))
            for name, value in filters.items()
        )
        self.feed = self.msg if passes else False

    def to_json_ev(self):
        if self.feed is False:
            return ""
        return "data: {}\n\n".format(json.dumps({"log": self.feed}))


class User(UserMixin):
    def __init__(self, id, password):
        self.id = id
        self.password = password

    def misp_login(self):
        raise AssertionError("the image replaces User.misp_login")


@login_manager.user_loader
def load_user(user_id):
    return User(user_id, "")


@login_manager.unauthorized_handler
def unauthorized():
    return redirect(url_for("login", auth_error=True, auth_error_message="Unauthorized. Review your cookie settings"))


@app.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    if request.method == "POST":
        user = User(request.form["username"], request.form["password"])
        error_message = "Username and Password does not match when connecting to MISP or incorrect MISP permission"
        try:
            is_logged_in, misp_error_message = user.misp_login()
            if len(misp_error_message) > 0:
                error_message = misp_error_message
            if is_logged_in:
                login_user(user)
                return redirect(url_for("index"))
        except requests.exceptions.SSLError:
            return redirect(url_for("login", auth_error=True, auth_error_message="MISP cannot be reached"))
        return redirect(url_for("login", auth_error=True, auth_error_message=error_message))
    return "login form " + request.args.get("auth_error_message", "")


@app.route("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("login"))


@app.route("/")
@login_required
def index():
    return "index of " + current_user.id


@app.route("/_logs")
@login_required
def logs():
    return Response(stream_with_context(event_stream_log()), mimetype="text/event-stream")


@app.route("/_maps")
@login_required
def maps():
    return Response(event_stream_maps(), mimetype="text/event-stream")


@app.route("/_eventStreamLastContributor")
@login_required
def getLastContributor():
    return Response(eventStreamLastContributor(), mimetype="text/event-stream")


@app.route("/_eventStreamAwards")
@login_required
def getLastStreamAwards():
    return Response(eventStreamAwards(), mimetype="text/event-stream")


def event_stream_log():
    subscriber = redis_server_log.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(live_helper.CHANNEL)
    for msg in subscriber.listen():
        yield EventMessage(msg["data"], json.loads(request.cookies.get("filters", "{}"))).to_json_ev()


def event_stream_maps():
    subscriber = redis_server_map.pubsub(ignore_subscribe_messages=True)
    subscriber.psubscribe(cfg.get("RedisMap", "channelDisp"))
    for msg in subscriber.listen():
        yield "data: {}\n\n".format(msg["data"])


def eventStreamLastContributor():
    raise AssertionError("the image replaces this stream")


def eventStreamAwards():
    raise AssertionError("the image replaces this stream")
