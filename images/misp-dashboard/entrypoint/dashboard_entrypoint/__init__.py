"""Start-up for the MISP Dashboard image: environment -> upstream config files -> the role's process.

Everything here is plain standard-library Python (the hook patches redis and geoip2 only if they are installed), so
it is unit-tested outside the image. Upstream's code is never modified: it reads the files written here, and the
`.pth` hook adds Redis AUTH/TLS and a GeoIP fallback to the libraries it calls.
"""

ROLES = ("web", "subscriber", "dispatcher")


class ConfigError(Exception):
    """A configuration that the image refuses to start with; its message is one line for the operator."""
