"""Shared test data: fake upstream default files (written here, not copied from upstream) and a session secret."""

import sys
from pathlib import Path

IMAGE_DIR = Path(__file__).resolve().parents[2] / "images" / "misp-dashboard"
ENTRYPOINT_DIR = IMAGE_DIR / "entrypoint"
# The entrypoint package is what the image installs into site-packages; here it is imported from the repository.
if str(ENTRYPOINT_DIR) not in sys.path:
    sys.path.insert(0, str(ENTRYPOINT_DIR))

# The sections and keys upstream's config.cfg.default has (values made up where they do not matter).
CONFIG_DEFAULT = """\
[Server]
host = localhost
port = 8001
debug = False
ssl = False

[Auth]
auth_enabled = False
misp_fqdn = https://misp.local
ssl_verify = True
session_secret = **Change_Me**
session_cookie_secure = True
session_cookie_samesite = Strict
permanent_session_lifetime = 1

[Dashboard]
graph_log_refresh_rate = 1
rotation_wait_time = 30
hours_spanned = 48
zoomlevel = 15
size_openStreet_pannel_perc = 55
item_to_plot = Attribute.category
fieldname_order=["Attribute.timestamp", "Event.id",
    ["Attribute.value", "Attribute.comment"]]
char_separator=||

[GEO]
updateFrequency = 60
zoomlevel = 11
clusteringDistance = 10

[CONTRIB]
max_number_of_last_contributor = 10
min_between_reload = 5
additional_help_text = ["first help line", "second help line"]

[Log]
directory=logs
dispatcher_filename=zmq_dispatcher.log
subscriber_filename=zmq_subscriber.log
helpers_filename=helpers.log
update_filename=updates.log

[RedisGlobal]
host=localhost
port=6250
misp_web_url = http://0.0.0.0
misp_instances = [{
    "name": "misp1",
    "url": "http://localhost",
    "zmq": "tcp://localhost:50000"}]

[RedisLIST]
db=3
listName=bufferList

[RedisLog]
db=0
channel=1
channelLastContributor = lastContributor
channelLastAwards = lastAwards

[RedisMap]
db=1
channelDisp=PicToDisplay
pathMaxMindDB=./data/GeoLite2-City/GeoLite2-City.mmdb
path_countrycode_to_coord_JSON=./data/country_code_lat_long.json

[RedisDB]
db=2
dbVersion=db_version
"""

# Upstream reads rank requirements 1 to 14 for every contribution (helpers/contributor_helper.py).
_LADDER = ["Cadet", *(f"Grade{n}" for n in range(2, 14)), "Admiral"]

# A valid ranking in upstream's ranking.cfg format (upstream's shortest ladder, 14 levels; 3 trophies).
RANKING = (
    """\
[monthlyRanking]
# 100% of a comment is ignored
rankMultiplier = 2
levelMax=3
categories_in_datatable = ["network_activity", "payload_delivery"]
default_pnts_per_contribution = 1
pnts_per_contribution = [["payload_delivery", 2]]

[rankTitle]
maxLevel=14
"""
    + "".join(f"{n}={title}\n" for n, title in enumerate(_LADDER, 1))
    + "\n[rankRequirementsPnts]\n"
    + "".join(f"{n}={2 * n}\n" for n in range(1, 15))
    + """
[rankRequirementsMisc]
heavilyCount=10
recentDays=31
regularlyDays=7

[rankRequirementsText]
"""
    + "".join(f"{n}=Requirement {n}\n" for n in range(1, 15))
    + """
[HonorBadge]
1=Helped the project
2=Gave a talk

[TrophyDifficulty]
trophyMapping=[10, 40, 50]

[HonorTrophy]
0=No trophy
1=Bronze
2=Silver
3=Gold

[HonorTrophyCateg]
categ=["network_activity", "payload_delivery"]

[additionalInfo]
textsArray=["Points double for sightings"]
"""
)

SECRET = "s3cr%t-with-percent-0123456789abcdefghij"  # pragma: allowlist secret
