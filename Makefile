# Isobar - the two commands of the README:
#   make lab    set up everything on a fresh machine and deploy the pipeline on the local Docker lab
#   make test   lint, unit tests, module integration tests, Molecule scenarios
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# pytest-xdist workers for make test-integration (0: no workers, every test in the pytest process). Three keep both
# cores busy while a worker waits on its servers: 437 s against 472 s with two, alone on this machine.
INTEGRATION_WORKERS ?= 3
ISOBAR_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/isobar
export ISOBAR_CACHE
# build: artifacts from the package registries into the local store (works offline from the
# download sites); upstream: the hosts download the official archives (needs internet access).
ISOBAR_ARTIFACT_SOURCE ?= build
export ISOBAR_ARTIFACT_SOURCE
INVENTORY ?= inventories/lab
# Vault identity of the inventory. ansible.cfg loads none: the lab's published throwaway identity is given here,
# another environment brings its own, e.g. make lab INVENTORY=inventories/prod VAULT_ARGS='--vault-id prod@prompt'.
VAULT_ARGS ?= $(if $(filter inventories/lab inventories/lab/,$(INVENTORY)),--vault-id lab@inventories/lab/vault-password.txt,)
# Extra arguments for the lab engine playbooks, e.g. LAB_ARGS='-e lab_dockerd_args=--storage-driver=vfs'
LAB_ARGS ?=
# Strategy of make lab's site.yml run: Mitogen (plugins/strategy/mitogen_linear.py, what make test's Molecule scenarios
# use; the changed=0 re-run about 90 s instead of about 225 s, bench/results); LAB_STRATEGY=linear for Ansible's own.
LAB_STRATEGY ?= mitogen_linear
# Every scenario but the opt-in CA renewal (make test-ca-renewal); upgrade runs last, on what the others left.
MOLECULE_SCENARIOS ?= --all --exclude ca_renewal
# Extra arguments of the benchmark, e.g. BENCH_ARGS='--runs 5 --keep-lab' (bench/bench.py --help)
BENCH_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt
	@echo "==> Python toolchain: $(VENV) from requirements.txt"
	@# the test fixtures unpack the artifact store with tarfile's extraction filters (3.11.4+; Debian 12's python3 is 3.11.2)
	@$(PYTHON) -c 'import sys, tarfile; assert sys.version_info[:2] >= (3, 11) and hasattr(tarfile, "data_filter"), \
	  f"Python 3.11.4+ needed (tarfile extraction filters), $(PYTHON) is {sys.version.split()[0]}: make PYTHON=/path/to/python3.11.4+"'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian, apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create the project virtualenv (pinned toolchain)

.PHONY: engine
engine: venv ## Install and start the Docker engine, build the lab base image
	ansible-playbook lab/engine.yml -i $(INVENTORY) $(VAULT_ARGS) $(LAB_ARGS)

.PHONY: test-tools
test-tools: venv ## Install the checkers the integration tests call on this machine (promtool, amtool; needs root)
	ansible-playbook lab/test-tools.yml -i localhost, $(LAB_ARGS)

.PHONY: artifacts
artifacts: venv ## Fill the artifact store (Kafka, InfluxDB 2, Telegraf, wheels) under $ISOBAR_CACHE
	$(BIN)/python tools/artifacts/fill-store --source $(ISOBAR_ARTIFACT_SOURCE)

.PHONY: artifacts-upgrade
artifacts-upgrade: venv ## Also build the releases the upgrade scenario moves to and from (tools/artifacts/upgrade-targets.yml)
	$(BIN)/python tools/artifacts/fill-store --source $(ISOBAR_ARTIFACT_SOURCE) --upgrade-targets

.PHONY: vault-check
vault-check: venv ## Check the vault password opens the inventory's vault
	@ansible-vault view $(VAULT_ARGS) $(INVENTORY)/group_vars/all/vault.yml >/dev/null 2>&1 || { \
	  echo "Cannot decrypt $(INVENTORY)/group_vars/all/vault.yml with $(or $(VAULT_ARGS),no vault identity): wrong vault password." >&2; \
	  echo "The lab's published throwaway password is in inventories/lab/vault-password.txt; other inventories: VAULT_ARGS='--vault-id <env>@prompt'." >&2; \
	  exit 1; }

.PHONY: lab
lab: venv vault-check artifacts ## From zero: toolchain, engine, image, artifacts, lab hosts, then site.yml
	ansible-playbook lab/create.yml -i $(INVENTORY) $(VAULT_ARGS) $(LAB_ARGS)
	ANSIBLE_STRATEGY_PLUGINS=plugins/strategy ANSIBLE_STRATEGY=$(LAB_STRATEGY) ansible-playbook site.yml -i $(INVENTORY) $(VAULT_ARGS)
	ansible-playbook lab/info.yml -i $(INVENTORY) $(VAULT_ARGS)

.PHONY: lab-destroy
lab-destroy: venv ## Remove the lab hosts and their network (keeps the image and the artifact store)
	ansible-playbook lab/destroy.yml -i $(INVENTORY) $(VAULT_ARGS) $(LAB_ARGS)

.PHONY: bench
bench: venv artifacts ## Benchmark on a private bench lab (isobar-bench-*): table + bench/results/<date>.json/.md
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

.PHONY: lint
lint: venv ## yamllint + ansible-lint (production profile) + ansible-test sanity and units of the collection
	yamllint --strict .
	ansible-lint --profile production
	tools/ansible-test/run sanity
	tools/ansible-test/run units

.PHONY: sanity
sanity: venv ## ansible-test sanity of the collection's plugins, roles, playbooks and meta (tools/ansible-test/run sanity)
	tools/ansible-test/run sanity

.PHONY: units
units: venv ## ansible-test units: the unit tests of the collection's Python (tests/unit/ansible-test-units.txt)
	tools/ansible-test/run units

.PHONY: collection
collection: venv ## Build the collection artifact isobar-pipeline-<version>.tar.gz into .reports/collection/
	ansible-galaxy collection build --force --output-path .reports/collection .

.PHONY: test-unit
test-unit: venv ## Unit tests (no servers)
	pytest tests/unit --junitxml=.reports/pytest/unit.xml

.PHONY: test-integration
test-integration: venv artifacts ## Module tests against real Kafka and InfluxDB started locally from the store
	@# pytest-xdist workers, each with its own Kafka and influxd (session fixtures on free ports); a test file stays on
	@# one worker, so its module fixtures are shared as before. Most of the time is ansible start-up (CPU) in one worker
	@# while another waits on a server. INTEGRATION_WORKERS=0 runs them in this process.
	pytest tests/integration -n $(INTEGRATION_WORKERS) --dist loadfile --junitxml=.reports/pytest/integration.xml

.PHONY: test-molecule
test-molecule: venv artifacts artifacts-upgrade ## Molecule scenarios on the Docker lab (default, failover, rotation, scale, upgrade)
	@# With shared_state Molecule creates the test lab once but never destroys first: a test lab (and Molecule
	@# state) left by an interrupted run would be reused as is. Start from bare hosts every time.
	molecule destroy
	rm -f .reports/molecule-*.xml .reports/molecule-steps.jsonl
	@# A failed verify is followed by the other scenarios and the destroy: name the failed tests last.
	@# Molecule's output passes through test_timings.py, which times each scenario's steps (converge, idempotence...).
	molecule test $(MOLECULE_SCENARIOS) 2>&1 | $(BIN)/python tools/test_timings.py molecule-steps \
	  || { $(BIN)/python tools/test_failures.py .reports; exit 1; }

.PHONY: test-upgrade
test-upgrade: venv artifacts artifacts-upgrade ## The upgrade scenario alone on a fresh test lab (make test runs it last; about 15 min)
	molecule destroy -s default
	rm -f .reports/molecule-upgrade.xml
	@# The lab is created and converged by the default scenario (shared state), then upgraded and verified. The test
	@# lab's inventory asks for InfluxDB one release behind (upgrade-targets.yml influxdb_from): the side effect upgrades it.
	rc=0; { molecule create -s default && molecule converge -s default \
	  && molecule side-effect -s upgrade && molecule verify -s upgrade; } || rc=$$?; \
	  molecule destroy -s default; exit $$rc

.PHONY: test-ca-renewal
test-ca-renewal: venv artifacts artifacts-upgrade ## Opt-in: the secret rotation plus a live CA renewal under traffic on a fresh test lab (about 30 min)
	molecule destroy -s default
	rm -f .reports/molecule-ca_renewal.xml
	@# The lab is created and converged by the default scenario (shared state), then rotated, renewed and verified.
	rc=0; { molecule create -s default && molecule converge -s default \
	  && molecule side-effect -s ca_renewal && molecule verify -s ca_renewal; } || rc=$$?; \
	  molecule destroy -s default; exit $$rc

# The phases of make test, in order; each one's wall time (and Molecule's steps per scenario) goes to
# .reports/test-timings.json, which bench/bench.py reports as rows (tools/test_timings.py). setup is the toolchain
# and the artifact store: seconds when warm, kept apart so that the other phases compare warm runs.
TEST_PHASES := setup lint unit integration molecule
TIMED = $(PYTHON) tools/test_timings.py --expect $(subst $(eval) ,$(comma),$(TEST_PHASES)) phase
comma := ,

.PHONY: test
test: ## Everything CI runs: lint, unit, integration, Molecule (timings: .reports/test-timings.json)
	@$(PYTHON) tools/test_timings.py reset
	@$(TIMED) setup -- $(MAKE) --no-print-directory venv artifacts artifacts-upgrade test-tools
	@# lint and the unit tests (about 200 s of one core that nothing waits for) run in the background at a lower
	@# priority (nice 10) beside the integration tests, off the critical path: on 0472d51's CI they ended within them
	@# (unit 123 s, lint 248 s) and the integration tests took 521 s (437 s alone), against 41 s of unit tests before
	@# 516 s of integration tests with lint beside them before. Beside the Molecule scenarios they cost more (45e5c30,
	@# reverted). Their output is printed at the end; a failure of any phase fails make test. Molecule needs the
	@# integration tests to have passed.
	@mkdir -p .reports; \
	  nice -n 10 $(TIMED) lint -- $(MAKE) --no-print-directory lint > .reports/lint.log 2>&1 & lint=$$!; \
	  nice -n 10 $(TIMED) unit -- $(MAKE) --no-print-directory test-unit > .reports/unit.log 2>&1 & unit=$$!; \
	  rc=0; { $(TIMED) integration -- $(MAKE) --no-print-directory test-integration \
	          && $(TIMED) molecule -- $(MAKE) --no-print-directory test-molecule; } || rc=$$?; \
	  unit_rc=0; wait $$unit || unit_rc=$$?; lint_rc=0; wait $$lint || lint_rc=$$?; \
	  echo "==> unit tests output (ran in the background)"; cat .reports/unit.log; \
	  echo "==> lint output (ran in the background)"; cat .reports/lint.log; \
	  [ $$unit_rc -eq 0 ] || echo "==> make test: unit tests failed (output above)" >&2; \
	  [ $$lint_rc -eq 0 ] || echo "==> make test: lint failed (output above)" >&2; \
	  [ $$rc -eq 0 ] && [ $$unit_rc -eq 0 ] && [ $$lint_rc -eq 0 ]

.PHONY: lock
lock: ## Regenerate requirements.txt from requirements.in in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# Pinned lock of requirements.in for Python 3.11 (regenerate: make lock)"; \
	  .lock-venv/bin/pip freeze --all | grep -vE '^(pip|setuptools|wheel)=='; } > requirements.txt
	rm -rf .lock-venv
