"""config.cfg rendering and the mounted community files, read back the way upstream reads them."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
from dashboard_entrypoint import ConfigError, config, settings

from .support import RANKING, SECRET


def upstream_read(text: str) -> configparser.ConfigParser:
    """What upstream does: configparser.ConfigParser() (BasicInterpolation) on config/config.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read_string(text)
    return cfg


def render(env: dict[str, str]) -> configparser.ConfigParser:
    return upstream_read(config.render_config(settings.load(env)))


def test_auth_is_always_on_and_strict(env):
    cfg = render(env)
    assert cfg.getboolean("Auth", "auth_enabled") is True
    assert cfg.get("Auth", "misp_fqdn") == "https://misp.example.org"
    assert cfg.getboolean("Auth", "ssl_verify") is True
    assert cfg.getboolean("Auth", "session_cookie_secure") is True
    assert cfg.get("Auth", "session_cookie_samesite") == "Strict"
    assert cfg.getint("Auth", "permanent_session_lifetime") == 1
    assert cfg.get("Server", "debug") == "False"
    assert cfg.get("Server", "ssl") == "False"


def test_percent_in_the_secret_survives_interpolation(env):
    text = config.render_config(settings.load(env))
    assert "s3cr%%t-with-percent" in text
    assert upstream_read(text).get("Auth", "session_secret") == SECRET


def test_redis_geoip_and_log_sections(env, layout):
    env["DASHBOARD_REDIS_PORT"] = "6380"
    cfg = render(env)
    assert cfg.get("RedisGlobal", "host") == env["DASHBOARD_REDIS_HOST"]
    assert cfg.getint("RedisGlobal", "port") == 6380
    assert cfg.get("RedisGlobal", "misp_web_url") == "https://misp.example.org"
    instances = json.loads(cfg.get("RedisGlobal", "misp_instances"))
    assert instances == [
        {"name": "misp.example.org", "url": "https://misp.example.org", "zmq": env["DASHBOARD_MISP_ZMQ_URL"]}
    ]
    # upstream's databases and channels are kept from its defaults
    assert [cfg.getint(s, "db") for s in ("RedisLog", "RedisMap", "RedisDB", "RedisLIST")] == [0, 1, 2, 3]
    assert cfg.get("RedisLIST", "listName") == "bufferList"
    assert cfg.get("RedisMap", "pathMaxMindDB") == str(layout["state"] / "geoip" / "GeoLite2-City.mmdb")
    assert cfg.get("RedisMap", "path_countrycode_to_coord_JSON") == str(
        layout["app"] / "data/country_code_lat_long.json"
    )
    assert cfg.get("Log", "directory") == "/dev"
    assert {cfg.get("Log", k) for k in cfg.options("Log") if k.endswith("_filename")} == {"stdout", "stderr"}
    # untouched tunables keep upstream's defaults, multi-line JSON included
    assert cfg.getint("Dashboard", "hours_spanned") == 48
    assert json.loads(cfg.get("Dashboard", "fieldname_order"))[2] == ["Attribute.value", "Attribute.comment"]


def test_settings_file_overrides_tunable_sections(env, tmp_path):
    overrides = tmp_path / "settings.ini"
    overrides.write_text(
        "[Dashboard]\nhours_spanned = 72\nsize_openStreet_pannel_perc = 60\n\n"
        "[GEO]\nzoomlevel = 9\n\n"
        '[CONTRIB]\nadditional_help_text = ["Sightings earn 100%% more", "second"]\n'
    )
    env["DASHBOARD_SETTINGS_FILE"] = str(overrides)
    cfg = render(env)
    assert cfg.getint("Dashboard", "hours_spanned") == 72
    assert cfg.getint("Dashboard", "size_openStreet_pannel_perc") == 60
    assert cfg.getint("GEO", "zoomlevel") == 9
    assert cfg.getint("GEO", "updateFrequency") == 60
    assert json.loads(cfg.get("CONTRIB", "additional_help_text")) == ["Sightings earn 100% more", "second"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[Auth]\nauth_enabled = False\n", "section [Auth] is not accepted"),
        ("[Auth]\nsession_cookie_secure = False\n", "section [Auth] is not accepted"),
        ("[RedisGlobal]\nhost = evil\n", "section [RedisGlobal] is not accepted"),
        ("[RedisLog]\ndb = 5\n", "section [RedisLog] is not accepted"),
        ("[RedisMap]\npathMaxMindDB = /x\n", "section [RedisMap] is not accepted"),
        ("[RedisLIST]\ndb = 5\n", "section [RedisLIST] is not accepted"),
        ("[RedisDB]\ndb = 5\n", "section [RedisDB] is not accepted"),
        ("[Server]\ndebug = True\n", "section [Server] is not accepted"),
        ("[Log]\ndirectory = /tmp\n", "section [Log] is not accepted"),
        ("[DEFAULT]\nauth_enabled = False\n", "section [DEFAULT] is not accepted"),
        ("[Dashboard]\nhours_spaned = 72\n", "[Dashboard] hours_spaned is not a key of upstream's config.cfg.default"),
        ("[GEO]\nzoomlevel = near\n", "[GEO] zoomlevel must be an integer"),
        ("[CONTRIB]\nadditional_help_text = not json\n", "[CONTRIB] additional_help_text must be JSON"),
        ('[CONTRIB]\nadditional_help_text = ["50% more"]\n', "[CONTRIB] additional_help_text: '%' must be followed"),
        ("[GEO]\nzoomlevel = 1\n[GEO]\nzoomlevel = 2\n", "cannot be parsed as an INI file"),
        ("zoomlevel = 1\n", "cannot be parsed as an INI file"),
    ],
)
def test_settings_file_refusals(env, tmp_path, content, message):
    overrides = tmp_path / "settings.ini"
    overrides.write_text(content)
    env["DASHBOARD_SETTINGS_FILE"] = str(overrides)
    with pytest.raises(ConfigError) as refused:
        config.render_config(settings.load(env))
    assert str(refused.value).startswith(f"{overrides}: ")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_nothing_reaches_auth_but_the_enforced_values(env, layout):
    # Even a tampered upstream default cannot add a key to [Auth] or turn it off.
    default = layout["defaults"] / "config.cfg.default"
    default.write_text(default.read_text().replace("auth_enabled = False", "auth_enabled = False\nextra_auth = x"))
    cfg = render(env)
    assert cfg.getboolean("Auth", "auth_enabled") is True
    assert not cfg.has_option("Auth", "extra_auth")


def test_missing_upstream_section_is_reported(env, layout):
    (layout["defaults"] / "config.cfg.default").write_text("[Server]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"upstream default has no \[Dashboard\] section"):
        config.render_config(settings.load(env))


def write_ranking(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ranking.cfg"
    path.write_text(text)
    return path


def test_valid_ranking_file(layout, tmp_path):
    config.validate_ranking(write_ranking(tmp_path, RANKING), layout["defaults"] / "ranking.cfg")
    # a longer ladder is also valid, up to the 16 rank icons upstream ships: numbered sections may grow
    longer = RANKING.replace("maxLevel=14", "maxLevel=15").replace("14=Admiral", "14=Admiral\n15=Legend")
    longer = longer.replace("14=28\n", "14=28\n15=30\n").replace("14=Requirement 14", "14=Requirement 14\n15=Legend")
    config.validate_ranking(write_ranking(tmp_path, longer), layout["defaults"] / "ranking.cfg")


def test_the_communitys_ranking_in_git_is_valid(repo, layout):
    """What apps/misp-dashboard mounts, checked as the dispatcher checks it at every start."""
    config.validate_ranking(
        repo / "apps/misp-dashboard/base/gamification/ranking.cfg", layout["defaults"] / "ranking.cfg"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[additionalInfo]", "[Auth]\nauth_enabled=False\n\n[additionalInfo]", "section [Auth] is not a section"),
        ("levelMax=3", "levelMax=3\nlevelMin=1", "[monthlyRanking] levelmin is not a key of upstream's ranking.cfg"),
        ("heavilyCount=10\n", "", "[rankRequirementsMisc] heavilycount is missing"),
        ("[HonorBadge]\n1=Helped the project\n2=Gave a talk\n", "", "section [HonorBadge] is missing"),
        ("3=Grade3\n", "", "[rankTitle] 3 is missing (maxLevel = 14)"),
        ("maxLevel=14", "maxLevel=13", "[rankTitle] maxLevel must be from 14 to 16, not 13"),
        ("maxLevel=14", "maxLevel=17", "[rankTitle] maxLevel must be from 14 to 16, not 17"),
        ("levelMax=3", "levelMax=17", "levelMax from 1 to 16"),
        ("2=Gave a talk", "2=Gave a talk\n3=a\n4=b\n5=c\n6=d", "[HonorBadge] at most 5 badges"),
        ("3=Gold", "3=Gold\n" + "\n".join(f"{n}=T{n}" for n in range(4, 14)), "[HonorTrophy] at most 0 to 12"),
        ("2=4\n", "2=four\n", "[rankRequirementsPnts] 2 must be an integer"),
        ("2=Gave a talk", "3=Gave a talk", "[HonorBadge] keys must be consecutive numbers from 1"),
        ("trophyMapping=[10, 40, 50]", "trophyMapping=[10, 40, 40]", "trophyMapping must add up to 100"),
        (
            "trophyMapping=[10, 40, 50]",
            "trophyMapping=[10, 40, 25, 25]",
            "trophyMapping has 4 tiers, [HonorTrophy] only 3",
        ),
        ("rankMultiplier = 2", "rankMultiplier = 1", "rankMultiplier must be > 1"),
        (
            'categ=["network_activity", "payload_delivery"]',
            "categ=network_activity",
            "[HonorTrophyCateg] categ must be",
        ),
        ('[["payload_delivery", 2]]', '[["payload_delivery"]]', "pnts_per_contribution must be a JSON list"),
        ("1=Cadet", "1=Cadet 100%", "[rankTitle] 1: '%' must be followed"),
    ],
)
def test_ranking_refusals(layout, tmp_path, old, new, message):
    assert old in RANKING
    path = write_ranking(tmp_path, RANKING.replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        config.validate_ranking(path, layout["defaults"] / "ranking.cfg")
    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("1=Cadet", "1=Cadet's", "[rankTitle] 1"),
        ("2=Grade2", '2=The "Grade"', "[rankTitle] 2"),
        ("1=Helped the project", "1=Helped \\ the project", "[HonorBadge] 1"),
        ("3=Gold", "3=</script>Gold", "[HonorTrophy] 3"),
        ("1=Bronze", "1=Bronze\tmedal", "[HonorTrophy] 1"),
        ('categ=["network_activity"', 'categ=["network\'activity"', "[HonorTrophyCateg] categ"),
        (
            'categories_in_datatable = ["network_activity"',
            'categories_in_datatable = ["a<b"',
            "categories_in_datatable",
        ),
    ],
)
def test_ranking_texts_that_break_the_contributors_page_are_refused(layout, tmp_path, old, new, where):
    """contrib.html: JSON.parse('{{ org_rank_json|safe }}') and its siblings (upstream templates/contrib.html)."""
    assert old in RANKING
    path = write_ranking(tmp_path, RANKING.replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        config.validate_ranking(path, layout["defaults"] / "ranking.cfg")
    assert f"{where}: " in str(refused.value)
    assert "would break the contributors page's JavaScript" in str(refused.value)


def test_what_passes_the_ranking_check_survives_contrib_html(layout, tmp_path):
    """The texts that pass, put into the page as upstream does, parse back to themselves (non-ASCII included)."""
    text = RANKING.replace("1=Cadet", "1=Cadet (Kadett, élève) & co.")
    path = write_ranking(tmp_path, text)
    config.validate_ranking(path, layout["defaults"] / "ranking.cfg")
    title = "Cadet (Kadett, élève) & co."
    # json.dumps (upstream server.py) -> a single-quoted JavaScript string literal -> JSON.parse
    literal = json.dumps({"1": title})
    assert "'" not in literal and "<" not in literal
    as_javascript_reads_it = literal.encode().decode("unicode_escape")  # \uXXXX and \" escapes, as in JS strings
    assert json.loads(as_javascript_reads_it) == {"1": title}
