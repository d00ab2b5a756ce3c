"""Upstream's config/config.cfg and config/ranking.cfg, rendered from Settings and the mounted files.

Upstream reads both files with configparser.ConfigParser() (BasicInterpolation), so every value written here has
its "%" doubled. Section and key names are validated against upstream's own config.cfg.default and ranking.cfg,
which the image keeps in DASHBOARD_DEFAULTS_DIR, so a bump of the upstream commit updates the accepted keys.
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

from dashboard_entrypoint import ConfigError
from dashboard_entrypoint.settings import Settings

# The sections a community may tune through DASHBOARD_SETTINGS_FILE. Everything else is derived from the
# environment and enforced: [Server], [Auth], [Log] and the Redis sections.
TUNABLE_SECTIONS = ("Dashboard", "GEO", "CONTRIB")
CONFIG_DEFAULT = "config.cfg.default"
RANKING_DEFAULT = "ranking.cfg"
GEOIP_RELATIVE = Path("geoip") / "GeoLite2-City.mmdb"
COUNTRY_COORDS_RELATIVE = Path("data") / "country_code_lat_long.json"

# Ranking sections whose keys are 1..N (or 0..N): their number of entries is the community's choice.
_NUMBERED = {"rankTitle": 1, "rankRequirementsPnts": 1, "rankRequirementsText": 1, "HonorBadge": 1, "HonorTrophy": 0}
_NUMBERED_EXTRA = {"rankTitle": {"maxlevel"}}


def escape(value: str) -> str:
    """A literal value for configparser's BasicInterpolation."""
    return value.replace("%", "%%")


def _new_parser(interpolation: configparser.Interpolation | None) -> configparser.ConfigParser:
    # A default section name no file uses: a [DEFAULT] in a mounted file is then an ordinary (unknown) section
    # instead of silently adding its keys to every section.
    return configparser.ConfigParser(interpolation=interpolation, default_section="\0no-default", strict=True)


def _read(path: Path, interpolation: configparser.Interpolation | None = None) -> configparser.ConfigParser:
    parser = _new_parser(interpolation)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError, OSError) as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"{path}: cannot be parsed as an INI file: {reason}") from None
    return parser


def _values(parser: configparser.ConfigParser, path: Path) -> dict[str, dict[str, str]]:
    """Every value as upstream will see it (interpolated); a '%' error names the file, section and key."""
    result: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        result[section] = {}
        for key in parser.options(section):
            try:
                result[section][key] = parser.get(section, key)
            except configparser.Error as error:
                reason = " ".join(str(error).split())
                raise ConfigError(f"{path}: [{section}] {key}: {reason} (write a literal % as %%)") from None
    return result


def _same_type(path: Path, section: str, key: str, value: str, default: str) -> None:
    """Values must parse the way upstream parses the default: integers stay integers, JSON stays JSON."""
    stripped = default.strip()
    if stripped.lstrip("-").isdigit():
        if not value.strip().lstrip("-").isdigit():
            raise ConfigError(f"{path}: [{section}] {key} must be an integer, not {value!r}")
    elif stripped.startswith(("[", "{")):
        try:
            json.loads(value)
        except ValueError:
            raise ConfigError(f"{path}: [{section}] {key} must be JSON like the default {stripped!r}") from None


def read_settings_overrides(path: Path, defaults: configparser.ConfigParser) -> dict[str, dict[str, str]]:
    """The tunable sections of DASHBOARD_SETTINGS_FILE; any other section or an unknown key is refused."""
    values = _values(_read(path, configparser.BasicInterpolation()), path)
    for section, keys in values.items():
        if section not in TUNABLE_SECTIONS:
            raise ConfigError(
                f"{path}: section [{section}] is not accepted (only {', '.join(f'[{s}]' for s in TUNABLE_SECTIONS)};"
                " authentication, Redis, server and log settings come from the image and its environment)"
            )
        for key, value in keys.items():
            if not defaults.has_option(section, key):
                raise ConfigError(f"{path}: [{section}] {key} is not a key of upstream's config.cfg.default")
            _same_type(path, section, key, value, defaults.get(section, key))
    return values


def render_config(settings: Settings) -> str:
    """The text of config/config.cfg (the same for every role: one pod's containers may share it)."""
    default_path = settings.defaults_dir / CONFIG_DEFAULT
    defaults = _read(default_path)
    for section in (*TUNABLE_SECTIONS, "Server", "Auth", "Log", "RedisGlobal", "RedisLIST", "RedisLog", "RedisMap"):
        if not defaults.has_section(section):
            raise ConfigError(f"{default_path}: upstream default has no [{section}] section (upstream changed?)")
    overrides = read_settings_overrides(settings.settings_file, defaults) if settings.settings_file else {}

    out = _new_parser(None)
    # Start from upstream's defaults (literal text, already valid for upstream), then replace.
    for section in defaults.sections():
        out.add_section(section)
        for key in defaults.options(section):
            out.set(section, key, defaults.get(section, key))
    for section, keys in overrides.items():
        for key, value in keys.items():
            out.set(section, key, escape(value))

    enforced: dict[str, dict[str, str]] = {
        # Only `python server.py` reads [Server]; gunicorn serves the app. Debug and Flask's ad-hoc TLS stay off.
        "Server": {"host": "0.0.0.0", "port": str(settings.port), "debug": "False", "ssl": "False"},  # noqa: S104
        "Auth": {
            "auth_enabled": "True",
            "misp_fqdn": settings.misp_url,
            "ssl_verify": "True",
            "session_secret": settings.session_secret,
            "session_cookie_secure": "True",
            "session_cookie_samesite": "Strict",
        },
        # Every log to the container's output: logging.FileHandler("/dev/stdout") works on the pipe.
        "Log": {
            "directory": "/dev",
            "dispatcher_filename": "stdout",
            "subscriber_filename": "stderr",  # the subscriber's stdout (one print per message) is discarded
            "helpers_filename": "stdout",
            "update_filename": "stdout",
        },
        "RedisGlobal": {
            "host": settings.redis_host,
            "port": str(settings.redis_port),
            "misp_web_url": settings.misp_url,
            "misp_instances": json.dumps(
                [{"name": settings.misp_name, "url": settings.misp_url, "zmq": settings.misp_zmq_url or ""}]
            ),
        },
        "RedisMap": {
            "pathMaxMindDB": str(settings.state_dir / GEOIP_RELATIVE),
            "path_countrycode_to_coord_JSON": str(settings.app_dir / COUNTRY_COORDS_RELATIVE),
        },
    }
    for section, keys in enforced.items():
        for key, value in keys.items():
            out.set(section, key, escape(value))
    # permanent_session_lifetime etc. keep upstream's defaults; nothing else in [Auth] survives from anywhere.
    for key in out.options("Auth"):
        if key not in {k.lower() for k in enforced["Auth"]} and key != "permanent_session_lifetime":
            out.remove_option("Auth", key)

    lines = ["# Written by dashboard_entrypoint from the environment at every start; do not edit.\n"]
    for section in out.sections():
        lines.append(f"\n[{section}]\n")
        for key in out.options(section):
            value = out.get(section, key).replace("\n", "\n    ")
            lines.append(f"{key} = {value}\n")
    return "".join(lines)


# What upstream's code and images allow (MISP/misp-dashboard at the pinned commit).
REQUIREMENT_LEVELS = 14
ORG_RANK_ICONS = 16
MONTHLY_RANK_ICONS = 16
BADGE_ICONS = 5
TROPHY_ICONS = 12


# Upstream's templates/contrib.html puts rank titles, badge and trophy texts and the category lists, through
# json.dumps, inside single-quoted JavaScript strings: JSON.parse('{{ org_rank_json|safe }}'). A ' ends the string,
# the \" and \\ of json.dumps become " and \ in it (invalid JSON), a < can close the <script> element, and a
# control character (a line break, a tab) is invalid in the JSON text once the string is read.
SCRIPT_UNSAFE = ("'", '"', "\\", "<")


def _script_safe(path: Path, section: str, key: str, text: str) -> None:
    if any(ch in text for ch in SCRIPT_UNSAFE) or any(ord(ch) < 0x20 for ch in text):
        raise ConfigError(
            f"{path}: [{section}] {key}: {text!r} would break the contributors page's JavaScript"
            " (no ', \", \\, < or control characters)"
        )


def _json(path: Path, section: str, key: str, value: str, kind: str) -> object:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ConfigError(f"{path}: [{section}] {key} must be {kind} in JSON, not {value!r}") from None
    return parsed


def _check_ranking_semantics(path: Path, values: dict[str, dict[str, str]]) -> None:
    """The constraints upstream's contributor_helper relies on without checking (it crashes at import otherwise)."""

    def numbered(section: str, start: int) -> list[int]:
        numbers = sorted(int(k) for k in values[section] if k.isdigit())
        if numbers != list(range(start, start + len(numbers))) or not numbers:
            raise ConfigError(f"{path}: [{section}] keys must be consecutive numbers from {start}")
        return numbers

    try:
        max_level = int(values["rankTitle"]["maxlevel"])
    except (KeyError, ValueError):
        raise ConfigError(f"{path}: [rankTitle] maxLevel must be an integer") from None
    # updateOrgContributionRank reads rank requirements 1 to 14 for every contribution
    # (helpers/contributor_helper.py); the organisation rank icons go up to 16 (static/pics/rankingMISPOrg).
    if not REQUIREMENT_LEVELS <= max_level <= ORG_RANK_ICONS:
        raise ConfigError(
            f"{path}: [rankTitle] maxLevel must be from {REQUIREMENT_LEVELS} to {ORG_RANK_ICONS}, not {max_level}"
        )
    for section in ("rankTitle", "rankRequirementsPnts", "rankRequirementsText"):
        missing = [str(n) for n in range(1, max_level + 1) if str(n) not in values[section]]
        if missing:
            raise ConfigError(f"{path}: [{section}] {missing[0]} is missing (maxLevel = {max_level})")
    for key, value in values["rankRequirementsPnts"].items():
        if not value.strip().isdigit():
            raise ConfigError(f"{path}: [rankRequirementsPnts] {key} must be an integer, not {value!r}")
    if len(numbered("HonorBadge", 1)) > BADGE_ICONS:
        raise ConfigError(f"{path}: [HonorBadge] at most {BADGE_ICONS} badges (static/pics/MISPHonorableIcons)")
    trophies = numbered("HonorTrophy", 0)
    if trophies[-1] > TROPHY_ICONS:
        raise ConfigError(f"{path}: [HonorTrophy] at most 0 to {TROPHY_ICONS} (static/pics/MISPTrophy)")
    for key in ("heavilycount", "recentdays", "regularlydays"):
        if not values["rankRequirementsMisc"].get(key, "").strip().isdigit():
            raise ConfigError(f"{path}: [rankRequirementsMisc] {key} must be an integer")
    monthly = values["monthlyRanking"]
    try:
        if float(monthly["rankmultiplier"]) <= 1 or not 1 <= int(monthly["levelmax"]) <= MONTHLY_RANK_ICONS:
            raise ValueError
    except (KeyError, ValueError):
        raise ConfigError(
            f"{path}: [monthlyRanking] rankMultiplier must be > 1 and levelMax from 1 to {MONTHLY_RANK_ICONS}"
        ) from None
    string_lists = (
        ("monthlyRanking", "categories_in_datatable"),
        ("HonorTrophyCateg", "categ"),
        ("additionalInfo", "textsarray"),
    )
    for section, key in string_lists:
        parsed = _json(path, section, key, values[section].get(key, ""), "a list of strings")
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise ConfigError(f"{path}: [{section}] {key} must be a JSON list of strings")
        if key != "textsarray":  # the additional texts are rendered by Jinja (escaped), not parsed by JavaScript
            for item in parsed:
                _script_safe(path, section, key, item)
    for section in ("rankTitle", "HonorBadge", "HonorTrophy"):
        for key, text in values[section].items():
            if key.isdigit():
                _script_safe(path, section, key, text)
    default_points = _json(
        path,
        "monthlyRanking",
        "default_pnts_per_contribution",
        monthly.get("default_pnts_per_contribution", ""),
        "a number",
    )
    if isinstance(default_points, bool) or not isinstance(default_points, int | float):
        raise ConfigError(f"{path}: [monthlyRanking] default_pnts_per_contribution must be a number")
    points = _json(path, "monthlyRanking", "pnts_per_contribution", monthly.get("pnts_per_contribution", ""), "a list")
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int | float) for p in points
    ):
        raise ConfigError(f'{path}: [monthlyRanking] pnts_per_contribution must be a JSON list of ["category", points]')
    mapping = _json(
        path, "TrophyDifficulty", "trophymapping", values["TrophyDifficulty"].get("trophymapping", ""), "a list"
    )
    if not isinstance(mapping, list) or not all(isinstance(p, int | float) and p >= 0 for p in mapping):
        raise ConfigError(f"{path}: [TrophyDifficulty] trophyMapping must be a JSON list of percentages")
    if abs(sum(mapping) - 100) > 1e-9:
        raise ConfigError(f"{path}: [TrophyDifficulty] trophyMapping must add up to 100, not {sum(mapping)}")
    if len(mapping) > len(trophies) - 1:
        raise ConfigError(
            f"{path}: [TrophyDifficulty] trophyMapping has {len(mapping)} tiers, [HonorTrophy] only {len(trophies) - 1}"
        )


def validate_ranking(path: Path, default_path: Path) -> None:
    """DASHBOARD_RANKING_FILE replaces upstream's ranking.cfg: same sections and keys, values upstream can use."""
    defaults = _read(default_path)
    values = _values(_read(path, configparser.BasicInterpolation()), path)
    for section, keys in values.items():
        if not defaults.has_section(section):
            raise ConfigError(f"{path}: section [{section}] is not a section of upstream's ranking.cfg")
        for key in keys:
            if section in _NUMBERED and (key.isdigit() or key in _NUMBERED_EXTRA.get(section, set())):
                continue
            if not defaults.has_option(section, key):
                raise ConfigError(f"{path}: [{section}] {key} is not a key of upstream's ranking.cfg")
    for section in defaults.sections():
        if section not in values:
            raise ConfigError(f"{path}: section [{section}] is missing (upstream reads it at start)")
        if section not in _NUMBERED:
            for key in defaults.options(section):
                if key not in values[section]:
                    raise ConfigError(f"{path}: [{section}] {key} is missing (upstream reads it at start)")
    _check_ranking_semantics(path, values)
