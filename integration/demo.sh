#!/usr/bin/env bash
# make demo: starts the real stack (PostgreSQL with SCRAM + TLS, Vault dev
# server), starts pgpseudo in front of it, queries through it with psql
# and prints how to connect. `integration/stack.sh down` stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state=$root/.stack

if [ -f "$state/env" ]; then
	echo "==> reusing the running stack (integration/stack.sh down to reset)"
else
	echo "==> starting the test stack"
	integration/stack.sh up >/dev/null
fi
eval "$(integration/stack.sh env)"

if [ -f "$state/pgpseudo.pid" ] && kill -0 "$(cat "$state/pgpseudo.pid")" 2>/dev/null; then
	kill "$(cat "$state/pgpseudo.pid")"
	sleep 1
fi

echo "==> creating the demo user and database"
psql_super() { psql -X -q -v ON_ERROR_STOP=1 "host=$PGPSEUDO_PG_SOCK port=$PGPORT user=postgres dbname=${1:-postgres} sslmode=disable" "${@:2}"; }
psql_super postgres -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo') THEN CREATE ROLE demo LOGIN PASSWORD 'demo-password'; END IF;
END \$\$;"
psql_super postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'demo'" | grep -q 1 ||
	psql_super postgres -c "CREATE DATABASE demo OWNER demo"
PGPASSWORD=demo-password psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=demo dbname=demo sslmode=verify-full sslrootcert=$PGPSEUDO_CA" <<'SQL'
CREATE TABLE IF NOT EXISTS greetings (id int PRIMARY KEY, language text, greeting text);
INSERT INTO greetings VALUES (1, 'English', 'Hello'), (2, 'German', 'Guten Tag'), (3, 'French', 'Bonjour')
ON CONFLICT DO NOTHING;
SQL

echo "==> starting pgpseudo"
printf '%s\n' "$PGPSEUDO_AUTH_PASSWORD" >"$state/auth_user.pw"
chmod 600 "$state/auth_user.pw"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6432)
cat >"$state/pgpseudo.yaml" <<YAML
listen: 127.0.0.1:$port
upstream:
  address: 127.0.0.1:$PGPORT
  tls: {mode: verify-full, ca_file: $PGPSEUDO_CA, server_name: localhost}
tls:
  cert_file: $PGPSEUDO_PROXY_CERT
  key_file: $PGPSEUDO_PROXY_KEY
auth:
  mode: scram
  auth_user: $PGPSEUDO_AUTH_USER
  auth_password_file: $state/auth_user.pw
log: {level: info, format: console}
YAML
nohup bin/pgpseudo serve --config "$state/pgpseudo.yaml" >"$state/pgpseudo.log" 2>&1 &
echo $! >"$state/pgpseudo.pid"
for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

conn="host=127.0.0.1 port=$port user=demo dbname=demo sslmode=verify-full sslrootcert=$PGPSEUDO_CA"
echo "==> querying through pgpseudo with psql (SCRAM terminated at the proxy, TLS on both legs)"
PGPASSWORD=demo-password psql -X "$conn" \
	-c "SELECT current_user AS upstream_user, ssl AS upstream_tls FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
	-c "SELECT * FROM greetings ORDER BY id"

cat <<EOT

pgpseudo is running on 127.0.0.1:$port (log: .stack/pgpseudo.log, config: .stack/pgpseudo.yaml).
Connect with:
  PGPASSWORD=demo-password psql "$conn"
Direct database variables: eval "\$(integration/stack.sh env)"
Stop everything: integration/stack.sh down
EOT
