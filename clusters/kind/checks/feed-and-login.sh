#!/bin/sh
# Run by .github/workflows/e2e.yaml in a throwaway pod of the e2e-probe namespace (curl's image), so
# that every request goes through the Services and the applications' network policies, as a
# client's would. Reads MISP's admin API key, e-mail and password from stdin, one a line (never
# from arguments, which the pod's spec shows); LABEL is the info of the event it creates.
set -eu
read -r key
read -r email
read -r password
: "${LABEL:?}"
misp=http://misp-web.misp.svc.cluster.local
dashboard=http://misp-dashboard-web.misp-dashboard.svc.cluster.local
cd /tmp

misp_api() { # PATH JSON: prints MISP's answer
  curl --fail --silent --show-error --retry 3 --retry-all-errors --header "Authorization: $key" \
    --header 'Accept: application/json' --header 'Content-Type: application/json' --data "$2" "$misp$1"
}

# The admin may use the dashboard: only a site admin can set it (MISP UserSettingsController
# setSetting; user 1 is the admin misp-docker's init_user makes).
misp_api /user_settings/setSetting/1/dashboard_access '{"value": 1}' > /dev/null
echo "MISP: dashboard_access set for the admin"

# Without a login, the dashboard's API sends the client to its login form (flask-login).
status=$(curl --silent --output /dev/null --write-out '%{http_code}' "$dashboard/_getTrendingEvents")
if [ "$status" != 302 ]; then
  echo "the dashboard answered $status to a request without a login" >&2
  exit 1
fi
echo "dashboard: no login, no data"

# The login: the dashboard posts the credentials to MISP's login form over TLS (DASHBOARD_MISP_URL,
# the run's CA) and answers with a redirect to its index, or back to /login on failure (upstream
# server.py login). Its session cookie is Secure, which curl neither keeps nor sends over plain
# HTTP: it is handed back by hand.
curl --fail --silent --show-error --dump-header login.headers --output /dev/null \
  --data-urlencode "username=$email" --data-urlencode "password=$password" "$dashboard/login"
location=$(tr -d '\r' < login.headers | sed -n 's/^[Ll]ocation: *//p')
case "$location" in
  "" | */login*)
    echo "the dashboard refused the login through MISP: ${location:-no redirect}" >&2
    exit 1
    ;;
esac
cookies=$(tr -d '\r' < login.headers |
  awk -F': ' 'tolower($1) == "set-cookie" { split($2, c, ";"); printf "%s%s", sep, c[1]; sep = "; " }')
echo "dashboard: logged in through MISP"

# An event saved in MISP is published on ZeroMQ (MISP Event::afterSave, misp_json_event, on add and
# edit); the dashboard's subscriber and dispatcher count it among the day's trending events, by its
# info, in its Redis (upstream zmq_dispatcher.py handler_event), which its API then answers. ZeroMQ's
# PUB socket drops what no subscriber is connected for, and the subscriber has no readiness probe:
# the event is saved again (edited) every 30 seconds until it is counted.
event=$(misp_api /events/add "{\"Event\": {\"info\": \"$LABEL\", \"distribution\": 0, \"threat_level_id\": 4, \"analysis\": 0}}" |
  grep -o '"id": *"[0-9]*"' | head -n 1 | tr -dc 0-9)
if [ -z "$event" ]; then
  echo "MISP did not answer the new event with its id" >&2
  exit 1
fi
echo "MISP: event $event ($LABEL) created"
attempt=1
while :; do
  status=$(curl --silent --show-error --get --output trending.json --write-out '%{http_code}' \
    --header "Cookie: $cookies" --data-urlencode "specificLabel=$LABEL" "$dashboard/_getTrendingEvents") ||
    status="no answer (curl exit $?)"
  case "$status" in
    200)
      if grep -q "\"$LABEL\"" trending.json; then
        break
      fi
      ;;
    302)
      echo "the dashboard rejected the session (302 to its login) while waiting for event $LABEL" >&2
      exit 1
      ;;
    *) echo "the dashboard answered $status to _getTrendingEvents" >&2 ;;
  esac
  if [ "$attempt" -ge 60 ]; then
    echo "the dashboard did not count event $LABEL within 5 minutes, saved $(((attempt - 1) / 6 + 1)) times" >&2
    exit 1
  fi
  if [ $((attempt % 6)) -eq 0 ]; then
    misp_api "/events/edit/$event" "{\"Event\": {\"analysis\": $((attempt / 6 % 3))}}" > /dev/null
    echo "MISP: event $event saved again"
  fi
  attempt=$((attempt + 1))
  sleep 5
done
echo "dashboard: event $LABEL counted"
