#!/bin/bash
# Creates MISP's database and its application user, with the RDS master credentials, over TLS with
# certificate verification. Idempotent: a re-run changes nothing but the user's password, which it
# sets to the current one (so rotating the password in Secrets Manager and re-running applies it).
# The application user gets every privilege on MISP's schema (runUpdates alters tables) and nothing
# else. misp-core's entrypoint then imports the tables on its first start.
set -euo pipefail

: "${DB_HOST:?}" "${DB_PORT:?}" "${DB_CA_FILE:?}" "${MASTER_CREDENTIALS:?}" "${APP_CREDENTIALS:?}"
# Credentials are mounted files (the Secrets misp-database-master and misp-database), not variables.
MASTER_USER=$(<"$MASTER_CREDENTIALS/username")
MASTER_PASSWORD=$(<"$MASTER_CREDENTIALS/password")
DB_NAME=$(<"$APP_CREDENTIALS/database")
APP_USER=$(<"$APP_CREDENTIALS/username")
APP_PASSWORD=$(<"$APP_CREDENTIALS/password")

# Identifiers and the password are spliced into SQL: refuse anything but plain alphanumerics
# (misp-docker's README asks for an alphanumeric database password anyway).
for name in DB_NAME APP_USER APP_PASSWORD; do
  if [[ ! "${!name}" =~ ^[A-Za-z0-9_]+$ ]]; then
    echo "init-database: $name must be alphanumeric" >&2
    exit 2
  fi
done

export MYSQL_PWD="$MASTER_PASSWORD"
mariadb --host="$DB_HOST" --port="$DB_PORT" --user="$MASTER_USER" \
  --ssl --ssl-ca="$DB_CA_FILE" --ssl-verify-server-cert --batch <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$APP_USER'@'%' IDENTIFIED BY '$APP_PASSWORD' REQUIRE SSL;
ALTER USER '$APP_USER'@'%' IDENTIFIED BY '$APP_PASSWORD' REQUIRE SSL;
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$APP_USER'@'%';
SQL
echo "init-database: database $DB_NAME and user $APP_USER are ready"
