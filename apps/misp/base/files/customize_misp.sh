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

# php-fpm: this pool file comes after the image's www.conf (pool.d/*.conf, in order) and reopens its [www]
# section, so its values win over those change_php_vars writes there (misp-docker entrypoint_fpm.sh;
# php-src sapi/fpm/fpm/fpm_conf.c, fpm_conf_ini_parser_section).
pools=(/etc/php/*/fpm/pool.d)
pool="${MISP_EKS_FPM_POOL_DIR:-${pools[0]}}" # settable only so that tests can run this script outside the pod
{
  echo "[global]"
  # SIGQUIT (stop-misp.sh) lets the children finish their requests for this long; 0, the default,
  # turns it into an immediate SIGTERM. At least stop-misp.sh's FPM budget.
  echo "process_control_timeout = 60"
  echo "[www]"
  # nginx beside it in the pod is php-fpm's only client: never the pod's IP (the image listens on
  # 0.0.0.0:9002 in Kubernetes mode).
  echo "listen = 127.0.0.1:9002"
  echo "listen.allowed_clients = 127.0.0.1"
  # Sessions live in Redis for every replica; phpredis locks them only when asked
  # (redis.session.locking_enabled defaults to 0, phpredis redis.c): without it, two requests of one
  # user overwrite each other's session. A lock expires with its request: no lock_expire, which
  # phpredis then takes from max_execution_time (PHP_MAX_EXECUTION_TIME; redis_session.c
  # lock_acquire); a request waits up to 1500 x 20 ms = 30 s for one.
  echo "php_admin_value[redis.session.locking_enabled] = 1"
  echo "php_admin_value[redis.session.lock_wait_time] = 20000"
  echo "php_admin_value[redis.session.lock_retries] = 1500"
  # php-fpm gives its workers an empty environment (clear_env=yes): hand the credential chain what
  # EKS Pod Identity put in the pod's environment.
  for name in AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_REGION AWS_DEFAULT_REGION; do
    if [[ -n "${!name:-}" ]]; then echo "env[$name] = \$$name"; fi
  done
} > "$pool/zz-misp-eks.conf"

# E-mail (settings.yaml email.enabled, through cluster-vars): off means MISP sends none at all; ses
# sends through Amazon SES.
case "${MISP_EKS_EMAIL:?}" in
  disabled) setting MISP.disable_emailing true ;;
  ses)
    # Amazon SES's SMTP interface with STARTTLS on 587, the credentials from the Secret misp-smtp.
    # MISP sends through CakeEmail's "default" configuration (MISP app/Lib/Tools/SendEmail.php); the
    # image writes it without user, password or TLS (misp-docker entrypoint_nginx.sh), so it is
    # written again; 'tls' => true makes CakePHP's SmtpTransport send STARTTLS (cakephp 2.x
    # lib/Cake/Network/Email/SmtpTransport.php, _connect). The values are checked against the forms
    # SES gives them, so none can break out of the PHP strings.
    for check in "MISP_EKS_SMTP_HOST=^email-smtp\.[a-z0-9-]+\.amazonaws\.com$" "MISP_EKS_SMTP_PORT=^587$" \
      "MISP_EKS_SMTP_USERNAME=^[A-Z0-9]{16,128}$" "MISP_EKS_SMTP_PASSWORD=^[A-Za-z0-9+/]+=*$"; do
      name="${check%%=*}"
      if [[ ! "${!name:-}" =~ ${check#*=} ]]; then
        echo "customize_misp: $name is missing or malformed (Secret misp-smtp, from Secrets Manager misp/smtp)" >&2
        exit 2
      fi
    done
    transport="'transport' => 'Smtp', 'host' => '$MISP_EKS_SMTP_HOST', 'port' => $MISP_EKS_SMTP_PORT, 'tls' => true,
        'username' => '$MISP_EKS_SMTP_USERNAME', 'password' => '$MISP_EKS_SMTP_PASSWORD', 'timeout' => 30"
    config="${MISP_EKS_CONFIG_DIR:-/var/www/MISP/app/Config}" # settable only so that tests can run this script
    # Rewritten in place: the file keeps the owner and mode (600) the entrypoint gave it.
    cat > "$config/email.php" <<PHP
<?php
class EmailConfig {
    public \$default = array($transport);
    public \$smtp = array($transport);
}
PHP
    setting MISP.disable_emailing false
    ;;
  *)
    echo "customize_misp: unknown MISP_EKS_EMAIL '$MISP_EKS_EMAIL'" >&2
    exit 2
    ;;
esac

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
