#!/bin/bash
# Init container of every MISP pod (misp-core image, as root). Prepares what misp-core's Kubernetes
# entrypoint (/kubernetes/entrypoint_fpm.sh) then uses:
#   /prepared/supervisor  the image's /etc/supervisor/conf.d with this pod's role applied, copied
#                         into the container's own conf.d at each of its starts (core-pod.yaml);
#   /prepared/gnupg       MISP's one GPG key, imported from the misp-gpg Secret, so that
#                         configure_misp.sh finds trustdb.gpg and generates no key of its own;
#   /misp-files           the volume of the files MISP keeps (MISP_DATA_DIRS), seeded once.
# Usage: prepare-pod.sh web|workers
set -euo pipefail

role="${1:?usage: prepare-pod.sh web|workers}"
# Fixed in the pod; settable only so that tests can run this script outside it.
upstream="${MISP_EKS_SUPERVISOR_SOURCE:-/etc/supervisor/conf.d}"
prepared="${MISP_EKS_PREPARED_DIR:-/prepared}"
key_file="${MISP_EKS_GPG_KEY_FILE:-/gpg/private_key}"
files_dist="${MISP_EKS_FILES_DIST:-/var/www/MISP/app/files.dist}"
shared="${MISP_EKS_SHARED_FILES:-/misp-files}"

# The directories of app/files that misp-core mounts from the misp-files volume (core-pod.yaml).
MISP_DATA_DIRS=(img/orgs img/custom certs terms)
# Each gets the image's own content (the shipped organisation logos, placeholders), once: nothing
# MISP wrote is overwritten (-n), and nothing keeps the image's read-only mode 0550 (misp-docker
# core/Dockerfile), which would let no later writer replace it. On EFS every call runs as the access
# point's www-data whoever makes it; elsewhere (kind) the files are handed over to www-data.
# (cp -n skips existing files and succeeds, in the image's coreutils 9.7 as before 9.2.)
for dir in "${MISP_DATA_DIRS[@]}"; do
  mkdir -p "$shared/$dir"
  if [[ -d "$files_dist/$dir" ]]; then cp -rn --no-preserve=mode "$files_dist/$dir/." "$shared/$dir/"; fi
done
find "$shared" \( ! -user 33 -o ! -group 33 \) -exec chown 33:33 {} + # www-data; none on EFS

cp -a "$upstream/." "$prepared/supervisor/"
case "$role" in
  web)
    # Web pods run no background workers and no scheduler: those run once, in the workers pod.
    # The entrypoint's `supervisorctl start misp-workers:*` then finds no group and carries on.
    echo "# Web pods run no MISP workers; see apps/misp/README.md." > "$prepared/supervisor/50-workers.conf.kubernetes"
    ;;
  workers)
    # Let the web pods read the workers' status over XML-RPC (SimpleBackgroundJobs.supervisor_host);
    # the misp-supervisor NetworkPolicy admits only MISP's web pods to this port.
    grep -qx 'port=127.0.0.1:9001' "$upstream/10-supervisor.conf.kubernetes" ||
      { echo "prepare-pod: unexpected upstream supervisor configuration; review this script" >&2; exit 1; }
    sed 's/^port=127\.0\.0\.1:9001$/port=0.0.0.0:9001/' "$upstream/10-supervisor.conf.kubernetes" \
      > "$prepared/supervisor/10-supervisor.conf.kubernetes"
    # MISP's one ZeroMQ publisher, for MISP Dashboard. customize_misp.sh starts it once MISP has
    # written its settings file (mispzmq.py exits without one); supervisord restarts it if it dies.
    cat > "$prepared/supervisor/60-mispzmq.conf" <<'CONF'
[program:mispzmq]
directory=/var/www/MISP
command=python3 /var/www/MISP/app/files/scripts/mispzmq/mispzmq.py
user=www-data
autostart=false
autorestart=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0
CONF
    ;;
  *)
    echo "prepare-pod: unknown role '$role' (expected web or workers)" >&2
    exit 2
    ;;
esac

export GNUPGHOME="$prepared/gnupg"
chmod 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase-fd 3 --import "$key_file" 3<<<"$GPG_PASSPHRASE"
fingerprint=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
[[ -n "$fingerprint" ]] || { echo "prepare-pod: the misp-gpg Secret holds no secret key" >&2; exit 1; }
echo "${fingerprint}:6:" | gpg --batch --import-ownertrust
# Import does not check the passphrase; MISP would only fail later, when signing. Check it now.
echo check | gpg --batch --pinentry-mode loopback --passphrase-fd 3 --local-user "$fingerprint" --sign \
  3<<<"$GPG_PASSPHRASE" > /dev/null ||
  { echo "prepare-pod: GPG_PASSPHRASE does not unlock the misp-gpg key" >&2; exit 1; }
gpgconf --kill all
rm -f "$GNUPGHOME"/S.*
chown -R 33:33 "$GNUPGHOME" # www-data, as misp-core expects
echo "prepare-pod: $role pod prepared; GPG key $fingerprint"
