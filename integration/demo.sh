#!/usr/bin/env bash
# make demo: starts PostgreSQL (SCRAM + TLS; no Vault: the demo's keys are
# in a file), loads the Kundendaten sample database, starts pgpseudo in front
# of it with configs/sample/policy.yaml, and shows side by side what
# care_team, bi_analyst and a developer see for the same query, a withheld
# column with its notice, refusals, and the audit trail.
# make demo-vault (demo.sh --vault) does the same with the keys in a Vault
# dev server (Transit KEK, keyset in KV v2) and audit checkpoints signed by
# a Transit key; it builds the Vault server once into the tool cache.
# `integration/stack.sh down` stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state=$root/.stack
mode=file
[ "${1:-}" = "--vault" ] && mode=vault

if [ -f "$state/env" ] && [ "$mode" = vault ] && ! grep -q VAULT_ADDR "$state/env"; then
	echo "==> the running stack has no Vault: restarting it with one"
	[ -f "$state/pgpseudo.pid" ] && kill "$(cat "$state/pgpseudo.pid")" 2>/dev/null || true
	integration/stack.sh down >/dev/null
fi
if [ -f "$state/env" ]; then
	echo "==> reusing the running stack (integration/stack.sh down to reset)"
elif [ "$mode" = vault ]; then
	echo "==> starting the test stack (PostgreSQL + a Vault dev server)"
	integration/stack.sh up >/dev/null
else
	echo "==> starting the test stack (PostgreSQL only: the demo keeps its keys in a file, no Vault is needed)"
	integration/stack.sh up --no-vault >/dev/null
fi
eval "$(integration/stack.sh env)"

if [ -f "$state/pgpseudo.pid" ] && kill -0 "$(cat "$state/pgpseudo.pid")" 2>/dev/null; then
	kill "$(cat "$state/pgpseudo.pid")"
	sleep 1
fi

psql_super() { psql -X -q -v ON_ERROR_STOP=1 "host=$PGPSEUDO_PG_SOCK port=$PGPORT user=postgres dbname=${1:-postgres} sslmode=disable" "${@:2}"; }
pw=demo-password
if ! psql_super postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'kunden'" | grep -q 1; then
	echo "==> loading the Kundendaten sample database (1000 customers)"
	psql_super postgres <<SQL
CREATE ROLE clinicians NOLOGIN;
CREATE ROLE dr_house LOGIN PASSWORD '$pw' IN ROLE clinicians;
CREATE ROLE bi_jane LOGIN PASSWORD '$pw';
CREATE ROLE dev_max LOGIN PASSWORD '$pw';
CREATE ROLE mallory LOGIN PASSWORD '$pw';
CREATE DATABASE kunden;
SQL
	go run ./configs/sample/gen -customers 1000 -seed 42 | psql_super kunden
	psql_super kunden -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO dr_house, bi_jane, dev_max, mallory"
fi

if [ "$mode" = vault ]; then
	echo "==> starting pgpseudo with the sample policy (keys: Vault at $VAULT_ADDR, audit log signed by Vault Transit)"
	printf '%s\n' "$VAULT_TOKEN" >"$state/vault.token"
	chmod 600 "$state/vault.token"
	keys_yaml="keys:
  provider: vault
  vault:
    address: $VAULT_ADDR
    ca_file: $VAULT_CACERT
    auth: {method: token, token_file: $state/vault.token}"
	audit_file=$state/audit-vault.jsonl
	audit_signer="signing_transit_key: pgpseudo-audit"
else
	echo "==> starting pgpseudo with the sample policy (keys: the FILE provider — for demos and tests only; production keeps keys in Vault, see make demo-vault)"
	keys_yaml="keys:
  provider: file
  allow_insecure_file_keys: true
  file: {path: $state/keyset.json}"
	audit_file=$state/audit.jsonl
	audit_signer="signing_key_file: $state/audit-signing.pem"
fi
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
policy: $root/configs/sample/policy.yaml
policy_database: kunden
$keys_yaml
audit:
  path: $audit_file
  $audit_signer
log: {level: info, format: console}
YAML
if [ "$mode" = vault ]; then
	# A dev server keeps everything in memory: after a restart the keyset
	# and the audit signing key are made again (and the old log set aside,
	# its signer gone).
	if ! bin/pgpseudo keys status --config "$state/pgpseudo.yaml" >/dev/null 2>&1; then
		bin/pgpseudo keys init --config "$state/pgpseudo.yaml"
		bin/pgpseudo audit keygen --config "$state/pgpseudo.yaml" >/dev/null
		if [ -f "$audit_file" ]; then mkdir -p "$state/audit-old" && mv "$state"/audit-vault*.jsonl* "$state/audit-old/" 2>/dev/null || true; fi
	fi
	bin/pgpseudo keys status --config "$state/pgpseudo.yaml"
else
	[ -f "$state/audit-signing.pem" ] || bin/pgpseudo audit keygen --out "$state/audit-signing.pem" >/dev/null
fi
# A log left by a build that wrote the earlier (HMAC) format is kept aside.
if [ -f "$state/audit.jsonl" ] && head -n1 "$state/audit.jsonl" | grep -q '"pgpseudo-audit/1"'; then
	mkdir -p "$state/audit-format1" && mv "$state"/audit*.jsonl* "$state/audit-format1/" 2>/dev/null || true
fi
[ "$mode" = vault ] || [ -f "$state/keyset.json" ] || bin/pgpseudo keys init --config "$state/pgpseudo.yaml" >/dev/null
bin/pgpseudo policy check --config "$state/pgpseudo.yaml" --db | grep -v '^info:' || true
nohup bin/pgpseudo serve --config "$state/pgpseudo.yaml" >"$state/pgpseudo.log" 2>&1 &
echo $! >"$state/pgpseudo.pid"
for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

conn() { echo "host=127.0.0.1 port=$port user=$1 dbname=kunden sslmode=verify-full sslrootcert=$PGPSEUDO_CA"; }
query="SELECT customer_id, full_name, email, phone, iban, birth_date, religion FROM customers ORDER BY created_at LIMIT 3"
for who in dr_house:care_team bi_jane:bi_analyst dev_max:developer; do
	user=${who%%:*}
	echo
	echo "==> as $user (role ${who#*:}): $query"
	PGPASSWORD=$pw psql -X "$(conn "$user")" -c "$query" 2>&1 || true
done
echo
echo "==> joins on tokens still work (bi_jane): top customers by order count"
PGPASSWORD=$pw psql -X "$(conn bi_jane)" -c "SELECT c.customer_id, c.full_name, count(*) AS orders FROM customers c JOIN orders o ON o.customer_id = c.customer_id GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3" 2>&1 || true
echo
echo "==> refused before reaching the database (bi_jane): probing a special-category column, and a SQL-text executor"
PGPASSWORD=$pw psql -X "$(conn bi_jane)" -c "SELECT count(*) FROM customers WHERE religion = 'evangelisch'" 2>&1 || true
PGPASSWORD=$pw psql -X "$(conn bi_jane)" -c "SELECT query_to_xml('SELECT * FROM customers', true, true, '')" 2>&1 || true
echo
echo "==> a user no role matches (mallory) is refused at login"
PGPASSWORD=$pw psql -X "$(conn mallory)" -c "SELECT 1" 2>&1 || true
echo
echo "==> the audit trail (last statement records)"
bin/pgpseudo audit query --format table "$audit_file" 2>/dev/null | tail -8 || true

if [ "$mode" = vault ]; then
	verify="bin/pgpseudo audit verify --config .stack/pgpseudo.yaml .stack/audit-vault.jsonl"
else
	verify="bin/pgpseudo audit verify --public-key .stack/audit-signing.pem.pub .stack/audit.jsonl"
fi
cat <<EOT

pgpseudo is running on 127.0.0.1:$port (log: .stack/pgpseudo.log, audit: .stack/${audit_file##*/}).
Users dr_house, bi_jane, dev_max (password $pw); for example:
  PGPASSWORD=$pw psql "$(conn bi_jane)"
  PGPASSWORD=$pw pg_dump -Fc -f dev.dump "$(conn dev_max)"
Verify the audit log (no secret needed): $verify
Stop everything: integration/stack.sh down
EOT
