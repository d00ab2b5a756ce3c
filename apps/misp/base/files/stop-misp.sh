#!/bin/bash
# preStop hook of misp-core in every MISP pod: stops MISP gracefully within the pod's
# terminationGracePeriodSeconds, which must cover PAUSE + JOBS + 10 + FPM (a policy checks it).
# Without it the kubelet's SIGTERM reaches php-fpm through tini at once, which php-fpm takes as
# "terminate now", and supervisord, the workers and the ZeroMQ publisher die with the container
# (misp-docker kubernetes/entrypoint_fpm.sh: supervisord in the background, `exec tini -- php-fpm`).
#   PAUSE  seconds to keep serving while the load balancer deregisters the pod (web: 20)
#   JOBS   seconds running background jobs may take to finish (workers; 0 in web pods)
#   FPM    seconds php-fpm may take to finish the requests it is serving (SIGQUIT: graceful);
#          php-fpm's process_control_timeout (customize_misp.sh) must be at least this
# Usage: stop-misp.sh PAUSE JOBS FPM
set -uo pipefail

pause="${1:?usage: stop-misp.sh PAUSE JOBS FPM}"
jobs="${2:?usage: stop-misp.sh PAUSE JOBS FPM}"
fpm="${3:?usage: stop-misp.sh PAUSE JOBS FPM}"

# The container's log: PID 1's standard output (a hook's own output is shown nowhere).
log() { echo "stop-misp: $*" >> "${MISP_EKS_STOP_LOG:-/proc/1/fd/1}"; }

# A MISP worker (`cake start_worker QUEUE`) takes job after job from Redis with no way to tell it to
# stop after the current one, and runs each as a child process (MISP StartWorkerShell::main,
# BackgroundJob::run); it has no signal handler, so stopping it while a child runs cuts that job.
# So every worker is frozen (SIGSTOP) at once, where it can take no further job, and stopped through
# supervisord as soon as it has no child left; a frozen worker's child runs on. Limits: a job that
# writes more than a pipe holds (64 KiB) waits for its frozen worker and is cut at the deadline, as
# is one that outlasts JOBS; a job Redis hands to an idle worker in the second it is stopped is lost
# (as at any stop of MISP's workers).
workers() { # "NAME PID" of each running worker of supervisord's misp-workers group
  supervisorctl status 'misp-workers:*' | awk '$2 == "RUNNING" && $3 == "pid" { sub(",", "", $4); print $1, $4 }'
}
busy() { # a live child: a job (one that has exited stays a zombie until its frozen worker reaps it)
  local child state
  for child in $(pgrep -P "$1"); do
    state=$(sed 's/^.*) //' "/proc/$child/stat" 2> /dev/null | cut -c1)
    if [[ -n "$state" && "$state" != Z ]]; then return 0; fi
  done
  return 1
}
term_pending() { # supervisord's SIGTERM (15: bit 0x4000) waits for the frozen process, or it is gone
  local key mask
  [[ -d "/proc/$1" ]] || return 0
  while read -r key mask; do
    if [[ "$key" == SigPnd: || "$key" == ShdPnd: ]] && ((0x$mask & 0x4000)); then return 0; fi
  done < "/proc/$1/status"
  return 1
}
stop_frozen() { # NAME... : stopped while frozen, so that each dies on its thaw and runs nothing more
  local name tries=50 pid pending
  supervisorctl stop "$@" > /dev/null &
  local stopper=$!
  while ((tries-- > 0)); do
    pending=0
    for name; do term_pending "${frozen[$name]}" || pending=1; done
    ((pending)) || break
    sleep 0.1
  done
  for name; do
    pid=${frozen[$name]}
    kill -CONT "$pid" 2> /dev/null
    unset "frozen[$name]"
  done
  wait "$stopper"
}

sleep "$pause"

declare -A frozen=()
if [[ "${MISP_EKS_ROLE:-}" == workers ]]; then
  # No new scheduled task from now on; then no new job for any worker, and the running ones finish.
  supervisorctl stop 'misp-workers:scheduler_00' > /dev/null
  while read -r name pid; do
    if [[ -n "$name" ]] && kill -STOP "$pid" 2> /dev/null; then frozen[$name]=$pid; fi
  done < <(workers)
  deadline=$((SECONDS + jobs))
  while ((${#frozen[@]} > 0)); do
    idle=()
    for name in "${!frozen[@]}"; do busy "${frozen[$name]}" || idle+=("$name"); done
    ((${#idle[@]} == 0)) || stop_frozen "${idle[@]}"
    ((${#frozen[@]} > 0 && SECONDS < deadline)) || break
    sleep 0.5
  done
  if ((${#frozen[@]} > 0)); then
    log "jobs still running after ${jobs}s, cut: ${!frozen[*]}"
    stop_frozen "${!frozen[@]}"
  fi
fi
# The rest (the web pods' nothing, the publisher, what outlasted JOBS): supervisord stops each with
# SIGTERM and waits its stopwaitsecs (10 s by default) before SIGKILL.
supervisorctl stop all > /dev/null
log "supervisord's programs stopped"

# php-fpm finishes the requests it serves, then exits; tini, the container's PID 1, follows.
master=$(pgrep -o -f '^php-fpm: master process') || { log "php-fpm is not running"; exit 0; }
kill -QUIT "$master"
deadline=$((SECONDS + fpm))
while kill -0 "$master" 2> /dev/null && ((SECONDS < deadline)); do sleep 1; done
log "php-fpm stopped"
