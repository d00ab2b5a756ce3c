"""Start-up for the MISP Dashboard image: environment -> upstream config files -> the role's process.

The start-up path (settings, config, launcher, run_script, hook) is plain standard-library Python (the hook patches
redis, geoip2 and zmq only if they are installed); the WSGI wrapper (wsgi, streams, sessions, misp) uses Flask,
requests and redis, as upstream does. All of it is tested outside the image. Upstream's code is never modified: it
reads the files written here, the `.pth` hook adds Redis AUTH/TLS, a GeoIP fallback and ZeroMQ keep-alive to the
libraries it calls, and the WSGI wrapper replaces names in its server module.
"""

ROLES = ("web", "subscriber", "dispatcher")


class ConfigError(Exception):
    """A configuration that the image refuses to start with; its message is one line for the operator."""
