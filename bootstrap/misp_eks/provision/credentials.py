"""Generated secret values, from the ``secrets`` module's CSPRNG, in forms MISP and AWS accept."""

from __future__ import annotations

import secrets
import string
import uuid

ALPHANUMERIC = string.ascii_letters + string.digits
# Specials that survive environment variables, shell quoting in misp-docker's scripts and YAML.
PASSWORD_SPECIALS = "-_.+=%"  # noqa: S105 (an alphabet)


def alphanumeric(length: int) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def database_password() -> str:
    """Alphanumeric only: misp-docker passes it to mysql and into PHP config unquoted (misp-docker README)."""
    return alphanumeric(32)


def redis_auth_token() -> str:
    """ElastiCache AUTH: 16-128 printable characters without @, " or /; 64 alphanumerics."""
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
    """MISP's default password policy: 12 characters or more with upper and lower case, a digit and a special."""
    alphabet = ALPHANUMERIC + PASSWORD_SPECIALS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in PASSWORD_SPECIALS for c in candidate)
        ):
            return candidate


def new_uuid() -> str:
    return str(uuid.uuid4())
