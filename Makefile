# plug-pipeline: the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA := deploy/kafka-local/kafka-local.sh
PG := deploy/postgres-local/pg-local.sh
STAMP := $(VENV)/.installed
# The AsyncAPI project's parser, from npm, pinned by tools/asyncapi/package-lock.json.
ASYNCAPI := tools/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI)/node_modules/.installed
# The local broker's client port; the suite and `make run` talk to it.
KAFKA_PORT ?= 9092
export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
# The local PostgreSQL's port (data under .pg/); the suite's warehouse tests use it.
PG_PORT ?= 55432
export PLUG_PIPELINE_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:$(PG_PORT)/plug

.PHONY: install run test unit lint typecheck schemas kafka-up kafka-down \
        kafka-clean chromium pg-up pg-down pg-clean run-load bench-decode bench-compression bench-live \
        bench-handler bench-sink bench-consume bench bench-load bench-load-memory clean asyncapi-check fuzz audit \
        layers testnet-tools

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

kafka-up:
	@bash $(KAFKA) single $(KAFKA_PORT)

kafka-down:
	@bash $(KAFKA) stop

kafka-clean:
	@bash $(KAFKA) clean

# Debian's chromium, for the report's browser test; installed only when missing.
chromium:
	@bash deploy/chromium/ensure-chromium.sh

# Debian's iproute2 and iptables, for the test network of the network fault tests and the
# soak; installed only when missing.
testnet-tools:
	@bash deploy/testnet/ensure-tools.sh

pg-up:
	@bash $(PG) up $(PG_PORT)

pg-down:
	@bash $(PG) stop

pg-clean:
	@bash $(PG) clean

# The whole path: Kafka, the ingress, a simulated busy centre, load into DuckDB, the report.
# Ends with the report's path. Knobs: DEMO_SECONDS, DEMO_RATE, DEMO_TIME_SCALE (see the script).
.PHONY: demo
demo: install kafka-up
	@bash deploy/demo/demo.sh

# The ingress on :8080 against the local broker, with a demo tenant unless tokens are set.
run: install kafka-up
	@echo
	@echo "Send a webhook:"
	@echo "  curl -sS -X POST 'http://127.0.0.1:$${PLUG_PIPELINE_PORT:-8080}/webhooks/receive-message?token=demo-token' \\"
	@echo "       -H 'Content-Type: application/json' --data-binary @tests/fixtures/plug/receive-message/text.json"
	@echo
	PLUG_PIPELINE_TOKENS="$${PLUG_PIPELINE_TOKENS:-demo=demo-token}" $(BIN)/plug-pipeline serve

lint: install
	$(BIN)/ruff check pipeline tests bench fuzz tools
	$(BIN)/ruff format --check pipeline tests bench fuzz tools
	$(BIN)/mypy

typecheck: lint

# No import cycle in pipeline/ and no import up the layers (tools/layers.py; stdlib only).
# `python tools/layers.py --graph` prints every module, its layer and its imports.
layers:
	$(PYTHON) tools/layers.py

schemas: install
	$(BIN)/plug-pipeline schemas

# Installed once and reused until the lock file changes; install scripts are not needed.
$(ASYNCAPI_STAMP): $(ASYNCAPI)/package.json $(ASYNCAPI)/package-lock.json
	npm ci --prefix $(ASYNCAPI) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# schemas/asyncapi.yaml through @asyncapi/parser: any error diagnostic fails.
asyncapi-check: $(ASYNCAPI_STAMP)
	node $(ASYNCAPI)/check.mjs schemas/asyncapi.yaml

unit: install
	$(BIN)/pytest tests/unit tests/property -q

# The whole suite against a real broker and a real PostgreSQL; both are stopped (data kept)
# even on failure.
test: install kafka-up pg-up chromium testnet-tools
	@status=0; \
	$(MAKE) --no-print-directory lint || status=$$?; \
	$(MAKE) --no-print-directory asyncapi-check || status=$$?; \
	$(BIN)/pytest -q || status=$$?; \
	bash $(KAFKA) stop; \
	bash $(PG) stop; \
	exit $$status

# The loader from the local broker into the local PostgreSQL (TARGET=plug.duckdb for DuckDB).
# The local test traffic is made up: keep it as it came (policy keep) unless told
# otherwise, so no pseudonym key is needed here (docs/privacy.md).
run-load: install kafka-up pg-up
	PLUG_PIPELINE_PRIVACY_POLICY=$${PLUG_PIPELINE_PRIVACY_POLICY:-keep} \
	$(BIN)/plug-pipeline load --to "$${TARGET:-$(PLUG_PIPELINE_TEST_PG_URL)}" $(LOAD_ARGS)

# The whole chain on a test network of namespaces (root, Debian's iproute2 and iptables):
# three brokers, the ingress, the loader and PostgreSQL, under SOAK_MINUTES of seeded
# random faults; prints one table and the seed (SOAK_SEED=N replays one); exit 1 on a loss.
# Not part of `make test` (SOAK_MINUTES plus 3 to 5 minutes); `SOAK_MINUTES=5` for a short one.
SOAK_MINUTES ?= 60
.PHONY: soak net-loss testnet-clean
soak: install testnet-tools
	$(BIN)/python -m tests.support.soak --minutes $(SOAK_MINUTES) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

# The issue's two minutes of 5 % loss and 300 ms on the ingress's link (30 s in the suite).
net-loss: install testnet-tools
	PLUG_PIPELINE_NET_LOSS_S=120 $(BIN)/pytest -q -s \
	  tests/integration/test_network_faults.py -k loss_and_delay

# Every namespace, veth and rule of a test network, even one a failed run left behind.
testnet-clean:
	@bash deploy/testnet/testnet.sh clean

# pipeline.consume against plain aiokafka on the local broker (make kafka-up first).
bench-consume: install
	$(BIN)/python bench/consume.py $(BENCH_ARGS)

bench-decode: install
	$(BIN)/python bench/decode.py

# CPU per webhook and bytes for every codec and level, on aiokafka's own batch builder.
bench-compression: install
	$(BIN)/python bench/compression.py $(BENCH_ARGS)

# The ingress's own CPU us per request through its HTTP stack, an in-memory sink, no Kafka;
# e.g. make bench-handler BENCH_ARGS="--compare main --rounds 5".
bench-handler: install
	$(BIN)/python bench/handler.py $(BENCH_ARGS)

# The Kafka sink's own CPU per webhook on the local broker, no HTTP;
# e.g. make bench-sink BENCH_ARGS="--compare main --rounds 6".
bench-sink: install kafka-up
	$(BIN)/python -m bench.sink --bootstrap $(KAFKA_BOOTSTRAP_SERVERS) $(BENCH_ARGS)

# End to end against the bench's own Kafka on 127.0.0.1:19092 (not part of `make test`);
# e.g. make bench BENCH_ARGS=--quick, BENCH_ARGS="--rounds 1", or BENCH_ARGS="--profile --workers 2".
bench: install
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

# Loader throughput, freshness and memory into DuckDB and PostgreSQL (not part of `make test`).
bench-load: install kafka-up pg-up
	$(BIN)/python -m bench.load --bootstrap $(KAFKA_BOOTSTRAP_SERVERS) $(BENCH_ARGS)

# The loader's peak RSS with each Arrow memory pool, lake and DuckDB (not part of `make test`).
bench-load-memory: install kafka-up
	$(BIN)/python -m bench.load_memory --bootstrap $(KAFKA_BOOTSTRAP_SERVERS) $(BENCH_ARGS)

# The wallboard's catch-up after a restart, for a busy centre's day on the local broker
# (not part of `make test`); e.g. make bench-live BENCH_ARGS="--events 400000".
bench-live: install kafka-up
	$(BIN)/python -m bench.live_catchup --bootstrap $(KAFKA_BOOTSTRAP_SERVERS) $(BENCH_ARGS)

# Coverage-guided fuzzing of decode + normalise (minutes; not part of `make test`).
# Crashing inputs land in tests/fixtures/fuzz/, which the unit tests replay.
FUZZ_SECONDS ?= 300
FUZZ_SEEDS ?= tests/fixtures/plug
fuzz: install
	$(BIN)/pip install -q -c constraints.txt -e '.[fuzz]'
	$(BIN)/python fuzz/decode.py $(FUZZ_SECONDS) $(FUZZ_SEEDS)

# Known vulnerabilities of the pinned dependencies, for users' CI (needs the vulnerability
# service; not part of `make test`). --strict: a dependency that cannot be audited fails.
audit: install
	$(BIN)/pip install -q -c constraints.txt -e '.[audit]'
	$(BIN)/pip-audit --strict --no-deps --disable-pip -r constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(ASYNCAPI)/node_modules
