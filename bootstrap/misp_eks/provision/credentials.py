"""Generated secret values, from the ``secrets`` module's CSPRNG, in forms MISP and AWS accept.

Every value must pass unchanged through each place it is handed on, none of which escapes it:

- argv of MISP's ``cake`` commands (CakePHP 2 ``ConsoleOptionParser::parse`` takes any token that
  starts with ``-`` for an option: ``cake User change_pw EMAIL -x…`` fails, and the admin keeps the
  password ``admin`` on a first install);
- sed replacements in misp-docker's entrypoint (``s/db\\s*password/$MYSQL_PASSWORD/`` and the like:
  ``&``, ``\\`` and ``/`` are special) and the PHP single-quoted strings they produce;
- unquoted shell words (``$MYSQL_CMD`` is word-split and globbed);
- URLs and form bodies (``session.save_path = tls://…?auth=TOKEN``, the login form): only
  unreserved characters survive;
- SQL literals (``init-database.sh`` refuses anything else), JSON (Secrets Manager, ``jq``,
  misp-docker's envsubst'ed settings), supervisord's ``%(ENV_…)s`` interpolation (``%``).

So every value is alphanumeric, except the admin password, which MISP's password policy reviews
(``Security.password_policy_complexity``: upper and lower case and a digit, or 16 characters),
and which may also hold ``_`` and ``.`` (unreserved everywhere above), never first: it always
starts with a letter. ``tests/provision/test_credentials.py`` passes many draws of each through
those consumers.
"""

from __future__ import annotations

import secrets
import string
import uuid

ALPHANUMERIC = string.ascii_letters + string.digits
PASSWORD_SPECIALS = "_."  # noqa: S105 (an alphabet: unreserved in URLs, plain in sed, shell, SQL, JSON, PHP)


def alphanumeric(length: int) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def database_password() -> str:
    """Alphanumeric only: misp-docker passes it to mysql and into PHP config unquoted (misp-docker README)."""
    return alphanumeric(32)


def redis_auth_token() -> str:
    """ElastiCache AUTH: 16-128 printable characters without @, " or /; 64 alphanumerics (also a URL query value)."""
    return alphanumeric(64)


def encryption_key() -> str:
    """Security.encryption_key: 32 characters or more."""
    return alphanumeric(48)


def salt() -> str:
    """Security.salt: random alphanumeric, 32 characters or more."""
    return alphanumeric(48)


def gpg_passphrase() -> str:
    return alphanumeric(40)


def session_secret() -> str:
    return alphanumeric(64)


def admin_password(length: int = 24) -> str:
    """A MISP password: a letter first (never ``-``), then letters, digits, ``_`` and ``.``, with an
    upper-case and a lower-case letter, a digit and a special, 12 characters or more (MISP
    ``app/Model/User.php`` ``complexPassword``, ``passwordLength``)."""
    alphabet = ALPHANUMERIC + PASSWORD_SPECIALS
    while True:
        candidate = secrets.choice(string.ascii_letters) + "".join(secrets.choice(alphabet) for _ in range(length - 1))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in PASSWORD_SPECIALS for c in candidate)
        ):
            return candidate


def new_uuid() -> str:
    return str(uuid.uuid4())
