# pgpseudo — build, test and demo.
#   make demo    start the real stack, the proxy, and query through it
#   make demo-vault  the same with the keys in Vault
#   make test    unit + integration tests against real PostgreSQL and Vault
#   make bench   direct vs proxy benchmarks
#   make lint    gofmt, go vet, staticcheck
SHELL := /bin/bash
GO ?= go
# Tools built from source live in a cache outside the clone, keyed by
# version, so a fresh clone (CI) reuses them.
TOOLCACHE ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/pgpseudo
VAULT_VERSION := $(shell sed -n 's|^require github.com/hashicorp/vault \(v[^ ]*\).*|\1|p' integration/vaultserver/go.mod)
# The key also covers the build's own files, so a changed build is rebuilt.
VAULT_KEY := $(VAULT_VERSION)-$(shell cat integration/vaultserver/go.mod integration/vaultserver/main.go | sha256sum | cut -c1-12)
VAULT_BIN := $(TOOLCACHE)/vault-$(VAULT_KEY)/vault
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLCACHE)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
export PGPSEUDO_VAULT_BIN := $(VAULT_BIN)
GOTEST_TIMEOUT ?= 60m

.PHONY: all build deps bench-deps vault test unit integration fuzz fuzz-long soak bench demo demo-vault lint clean

all: build

build:
	$(GO) build -o bin/pgpseudo ./cmd/pgpseudo

# PostgreSQL server and clients (psql, pg_dump, pg_restore, pgbench),
# the pgJDBC driver (/usr/share/java/postgresql.jar) and a JDK for the JDBC
# tests, and the other client libraries the integration tests drive
# (psycopg 3, psycopg2, SQLAlchemy, pandas, psqlODBC with unixODBC and
# pyodbc, Node.js with npm) from Debian's packages, installed only when
# missing. Debian's automatic "main" cluster is switched off first: tests
# make their own throwaway clusters. nodejs and npm are asked for only
# when npm is missing: a Node.js from elsewhere (NodeSource) bundles npm
# and conflicts with Debian's npm package. Then node-postgres, pinned in
# integration/testdata/node/package-lock.json, is installed there with
# npm ci when node_modules is missing or older than the lock file.
NODE_PROBE := integration/testdata/node
deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v pg_dump >/dev/null || [ ! -e /usr/share/java/postgresql.jar ] || ! command -v javac >/dev/null || ! /usr/bin/python3 -c 'import psycopg, psycopg2, sqlalchemy, pandas, pyodbc' 2>/dev/null || ! ls /usr/lib/*/odbc/psqlodbcw.so >/dev/null 2>&1 || ! command -v isql >/dev/null || ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "installing PostgreSQL, pgJDBC, psycopg 3, psycopg2, SQLAlchemy, pandas, psqlODBC, pyodbc and Node.js from Debian's packages…"; \
		mkdir -p /etc/postgresql-common; \
		[ -e /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-contrib libpostgresql-jdbc-java default-jdk-headless python3-psycopg \
			python3-psycopg2 python3-sqlalchemy python3-pandas python3-pyodbc odbc-postgresql unixodbc $$(command -v npm >/dev/null || echo nodejs npm); \
	fi
	@if [ ! -e $(NODE_PROBE)/node_modules/.package-lock.json ] || [ $(NODE_PROBE)/package-lock.json -nt $(NODE_PROBE)/node_modules/.package-lock.json ]; then \
		echo "installing node-postgres in $(NODE_PROBE) (npm ci)…"; \
		cd $(NODE_PROBE) && npm ci --no-audit --no-fund; \
	fi

# The official Vault server, built once from its pinned Go module
# (integration/vaultserver); several minutes the first time, then reused
# from the tool cache.
vault: $(VAULT_BIN)
$(VAULT_BIN):
	@mkdir -p $(dir $(VAULT_BIN))
	@echo "building the Vault server $(VAULT_VERSION) from its Go module (first time: several minutes)…"
	cd integration/vaultserver && $(GO) build -ldflags='-s -w' -o $(VAULT_BIN).tmp . && mv $(VAULT_BIN).tmp $(VAULT_BIN)

test: deps vault
	$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) ./...
	cd deploy/kubernetes/validate && $(GO) test -count=1 ./...

unit:
	$(GO) test $$($(GO) list ./... | grep -v /integration)

integration: deps vault
	$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) -v ./integration/

# Short fuzzing runs of the framer and startup parser (seed corpora always
# run as part of `make test`).
fuzz:
	$(GO) test ./proxy/wire -run '^$$' -fuzz FuzzParseStartup -fuzztime 30s
	$(GO) test ./proxy/wire -run '^$$' -fuzz FuzzReader -fuzztime 30s

# Every fuzz target for FUZZTIME (default 10 minutes) each, in FUZZ_JOBS
# lanes of one worker; the table of executions goes to fuzz-long.out
# (docs/reliability.md keeps the last results).
FUZZTIME ?= 10m
FUZZ_JOBS ?= 2
fuzz-long:
	FUZZTIME=$(FUZZTIME) FUZZ_JOBS=$(FUZZ_JOBS) GO=$(GO) ./tools/fuzz-long.sh

# 30 minutes (SOAK=…) of mixed load on the real binary, sampled every
# 10 s into soak.csv and drawn as docs/soak.png (python3-matplotlib from
# Debian's packages, installed when missing). Not part of make test.
SOAK ?= 30m
soak: deps build
	@/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || { echo "installing matplotlib from Debian's packages…"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-matplotlib; }
	PGPSEUDO_TEST_NO_VAULT=1 PGPSEUDO_SOAK=$(SOAK) SOAK_CSV=$(CURDIR)/soak.csv $(GO) test -tags soak -count=1 -timeout 3h -run '^TestSoak$$' -v ./integration/
	/usr/bin/python3 tools/soak-plot.py soak.csv docs/soak.png

# PgBouncer, the reference make bench measures the proxy against.
bench-deps:
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { echo "installing PgBouncer from Debian's packages…"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer && \
		{ systemctl disable --now pgbouncer 2>/dev/null || service pgbouncer stop 2>/dev/null || true; }; }

# make bench: the performance table (BenchmarkTargets, BENCH_RUNS runs in
# one go; the table is also written to bench-table.md), then pg_dump as the
# developer role and the per-value transformer and audit costs. No Vault:
# the benchmarks use file keys.
BENCH_RUNS ?= 3
bench: deps bench-deps build
	PGPSEUDO_TEST_NO_VAULT=1 PGPSEUDO_BENCH_TABLE=$(CURDIR)/bench-table.md $(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) -run '^$$' -bench '^BenchmarkTargets$$' -benchtime $(BENCH_RUNS)x ./integration/ | tee bench.out
	PGPSEUDO_TEST_NO_VAULT=1 $(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) -run '^$$' -bench '^BenchmarkDeveloperDump$$' -benchtime 1x ./integration/ | tee -a bench.out
	$(GO) test -run '^$$' -bench . -benchmem ./crypto/... ./audit/... | tee -a bench.out

demo: deps build
	./integration/demo.sh

# The demo with its keys in a Vault dev server (built once into the tool
# cache: several minutes the first time).
demo-vault: deps vault build
	./integration/demo.sh --vault

$(STATICCHECK):
	@mkdir -p $(dir $(STATICCHECK))
	GOBIN=$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

clean:
	rm -rf bin .stack
