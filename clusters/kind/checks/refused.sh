#!/bin/sh
# Run by .github/workflows/e2e.yaml in a throwaway pod of the e2e-probe namespace (curl's image):
# succeeds only if URL's name resolves and the connection to it is then dropped, as a network
# policy drops it (kube-network-policies gives no answer). A name that does not resolve, a refused
# connection or an answer fails, each with its own message: none of them shows a policy at work.
set -u
url=${1:?usage: refused.sh URL}
# A lookup that times out leaves time_namelookup at 0; a connection never made leaves time_connect at 0.
timeout=${CONNECT_TIMEOUT:-10}
times=$(curl --silent --output /dev/null --connect-timeout "$timeout" --max-time $((timeout * 2)) \
  --write-out '%{time_namelookup} %{time_connect}' "$url")
code=$?
lookup=${times%% *}
connect=${times##* }
case "$code $lookup" in
  "6 "* | *" 0.000000")
    echo "$url: the name did not resolve (curl exit $code), which says nothing of the policies" >&2
    exit 1
    ;;
  "0 "*)
    echo "$url answered: the network policy let this pod through" >&2
    exit 1
    ;;
  "28 "*)
    if [ "$connect" = 0.000000 ]; then
      echo "$url: resolved in ${lookup}s, the connection was dropped"
      exit 0
    fi
    echo "$url: connected, then timed out: the network policy let this pod through" >&2
    exit 1
    ;;
esac
echo "$url: curl exit $code (not a dropped connection: 7 is a refusal, e.g. a Service without endpoints)" >&2
exit 1
