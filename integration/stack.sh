#!/usr/bin/env bash
# Starts, shows or stops the real test stack (PostgreSQL with SCRAM + TLS,
# Vault dev server) for people:
#   integration/stack.sh up     start it and print the PG*/VAULT_* variables
#                               (--no-vault: PostgreSQL only, no Vault build)
#   integration/stack.sh env    print them again
#   integration/stack.sh down   stop it and delete its files
# Use the variables with: eval "$(integration/stack.sh env)"
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
up)
	if [[ " $* " == *" --no-vault "* ]]; then
		make --no-print-directory deps >&2
	else
		make --no-print-directory deps vault >&2
	fi
	;;
env | down) ;;
*) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
go build -o bin/stackctl ./integration/stackctl
exec bin/stackctl "$@"
