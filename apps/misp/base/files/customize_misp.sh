#!/bin/bash
# misp-docker's customisation hook, /custom/files/customize_misp.sh: the entrypoint runs it as root
# after /configure_misp.sh and before php-fpm starts, on every start. It sets what the image has no
# variable for. MISP_EKS_ROLE is web or workers (see apps/misp/README.md).
set -euo pipefail

cake() { sudo -u www-data /var/www/MISP/app/Console/cake "$@"; }
setting() { cake Admin setSetting -q "$1" "$2"; }

# Attachments in S3 through the pod's identity, with no static keys: with aws_compatible=false MISP's
# S3 client uses the AWS SDK's default credential chain (MISP app/Lib/Tools/AWSS3Client.php).
# ATTACHMENTS_DIR=s3:// in the environment makes MISP store attachments there.
setting Plugin.S3_enable true
setting Plugin.S3_aws_compatible false
setting Plugin.S3_bucket_name "$MISP_EKS_S3_BUCKET"
setting Plugin.S3_region "$AWS_REGION"

# php-fpm gives its workers an empty environment (clear_env=yes): hand the credential chain what
# EKS Pod Identity put in the pod's environment.
pools=(/etc/php/*/fpm/pool.d)
pool="${pools[0]}"
{
  echo "[www]"
  for name in AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_REGION AWS_DEFAULT_REGION; do
    if [[ -n "${!name:-}" ]]; then echo "env[$name] = \$$name"; fi
  done
} > "$pool/zz-misp-eks.conf"

# ZeroMQ for MISP Dashboard: every replica queues its notifications in Redis; exactly one publisher,
# in the workers pod, sends them out on port 50000. It runs under supervisord there
# (prepare-pod.sh), so no MISP process may start one of its own: Plugin.ZeroMQ_supervisor_managed
# (MISP app/Lib/Tools/PubSubTool.php, setupPubServer). setSetting does not know that key, so the
# image's own config tool writes it into this pod's config.php (each pod has its own app/Config).
sudo -u www-data php /var/www/MISP/tests/modify_config.php modify \
  '{"Plugin": {"ZeroMQ_supervisor_managed": true}}' > /dev/null
for topic in event object object_reference attribute tag sighting user organisation audit; do
  setting "Plugin.ZeroMQ_${topic}_notifications_enable" true
done
setting Plugin.ZeroMQ_port 50000

case "${MISP_EKS_ROLE:?}" in
  web)
    setting Plugin.ZeroMQ_host 127.0.0.1
    setting Plugin.ZeroMQ_enable true
    ;;
  workers)
    setting Plugin.ZeroMQ_host 0.0.0.0
    setting Plugin.ZeroMQ_enable true # also writes the publisher's settings file (mispzmq_settings.json)
    supervisorctl start mispzmq # supervisord restarts it should it die
    ;;
  *)
    echo "customize_misp: unknown MISP_EKS_ROLE '$MISP_EKS_ROLE'" >&2
    exit 2
    ;;
esac
echo "customize_misp: $MISP_EKS_ROLE pod configured"
