# chaos-tui recipes. `just` itself: pip install rust-just.
# The chaos recipes drive the Docker Compose stack and are never part of `just ci`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The Python that runs the tool: PYTHON if set, else this checkout's .venv (what `just install`
# makes) if there is one, else python3 on PATH; the tool itself likewise: PYTHON -m chaos_tui,
# the .venv's, else `chaos-tui` on PATH (installed with pip or pipx anywhere).
venv_python := quote(justfile_directory() / ".venv/bin/python")
has_venv := path_exists(justfile_directory() / ".venv/bin/python")
python := env_var_or_default("PYTHON", if has_venv == "true" { venv_python } else { "python3" })
chaos_tui := if env_var_or_default("PYTHON", "") != "" { python + " -m chaos_tui" } else if has_venv == "true" { venv_python + " -m chaos_tui" } else { "chaos-tui" }
chaos_files := "-f infra/docker/docker-compose.chaos.yml"
mesh_files := "-f infra/docker/docker-compose.mesh.yml"
# The compose projects: the same variables tell chaos-tui's agent which containers it may break.
project := env_var_or_default("CHAOS_DOCKER__PROJECT", "chaos")
mesh_project := env_var_or_default("CHAOS_DOCKER__MESH_PROJECT", "chaos-mesh")

# COMPOSE picks the Compose command; else v2 (`docker compose`) when present, else `docker-compose`
# (v1, or v2+ where that is how it is installed).
compose := env_var_or_default("COMPOSE", `docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "docker-compose"`)

# CHAOS_TESTBED=1: run the stack from the offline test-bed image instead of the official ones,
# and the network-cut sidecar from it too unless CHAOS_DOCKER__SIDECAR_IMAGE says otherwise.
# The line below builds it (cached: a second time takes a blink) and exports its tag.
testbed := if env_var_or_default("CHAOS_TESTBED", "") =~ '^(|0|false|no)$' { "" } else { "1" }
testbed_env := if testbed == "" { "" } else { "exports=$(" + python + " infra/docker/testbed/build_testbed.py --exports); eval \"$exports\"" }

default:
    @just --list

# Install the tool and its test needs into .venv.
install:
    python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'

# The whole test suite (what CI runs), in the .venv that `install` has just made (the variables
# above were fixed before it existed).
test: install
    {{ env_var_or_default("PYTHON", venv_python) }} -m pytest

ci: test

# Build the offline test-bed image (no registry needed); prints CHAOS_TESTBED_IMAGE=...
testbed:
    {{python}} infra/docker/testbed/build_testbed.py

# Build our own image, chaos-tui:local: the relay, the policy gateway, the network-cut sidecar.
chaos-build:
    {{compose}} {{chaos_files}} --profile chaos-outbox build sea-mq-worker

# Bring up the chaos stack: a profile (chaos-outbox, chaos-opa, chaos-observe, chaos-queue) or mesh.
chaos-up profile="chaos-outbox":
    #!/usr/bin/env bash
    set -euo pipefail
    {{testbed_env}}
    extra=""; meshextra=""
    if [ -n "{{testbed}}" ]; then
      extra="-f infra/docker/docker-compose.testbed.yml"
      meshextra="-f infra/docker/docker-compose.mesh-testbed.yml"
    fi
    if [ "{{profile}}" = "mesh" ]; then
      {{compose}} -p {{mesh_project}} {{mesh_files}} $meshextra up -d
    else
      {{compose}} -p {{project}} {{chaos_files}} $extra --profile {{profile}} up -d
    fi

# Take every chaos stack down: containers, networks and volumes of ours.
chaos-down:
    #!/usr/bin/env bash
    set -euo pipefail
    export CHAOS_TESTBED_IMAGE=${CHAOS_TESTBED_IMAGE:-unused}
    for p in chaos-outbox chaos-opa chaos-observe chaos-queue; do
      {{compose}} -p {{project}} {{chaos_files}} --profile $p down -v --remove-orphans
    done
    {{compose}} -p {{mesh_project}} {{mesh_files}} down -v --remove-orphans

# The console against the Docker stack; given a scenario (`just chaos scenario=NAME`, `just chaos
# NAME`, or CHAOS_SCENARIO=NAME in the environment), that scenario headless against it instead.
chaos scenario="":
    #!/usr/bin/env bash
    set -euo pipefail
    scenario={{quote(scenario)}}
    scenario="${scenario#scenario=}"
    scenario="${scenario:-${CHAOS_SCENARIO:-}}"
    {{testbed_env}}
    if [ -n "$scenario" ]; then
      exec {{chaos_tui}} --headless --target docker --enable-chaos --scenario "$scenario"
    fi
    exec {{chaos_tui}} --target docker --enable-chaos

# A suite of scenarios (a built-in suite's name or a suite file), headless, against the Docker
# stack: `just chaos-suite platform`.
chaos-suite suite:
    #!/usr/bin/env bash
    set -euo pipefail
    suite={{quote(suite)}}
    suite="${suite#suite=}"
    {{testbed_env}}
    exec {{chaos_tui}} --headless --target docker --enable-chaos --suite "$suite"

# One scenario, headless, against the Docker stack.
run-chaos scenario:
    #!/usr/bin/env bash
    set -euo pipefail
    {{testbed_env}}
    exec {{chaos_tui}} --headless --scenario {{scenario}} --target docker --enable-chaos

# The embedded sandbox (no Docker needed).
sandbox-up:
    {{chaos_tui}} sandbox up

sandbox-down:
    {{chaos_tui}} sandbox down

# One scenario, headless, on the embedded sandbox.
run scenario="postgres_restart_outbox":
    {{chaos_tui}} --headless --scenario {{scenario}}

# Regenerate docs/scenarios.md and docs/runbooks/README.md from the scenarios' plans (a test
# fails while they are stale; `--check` only says so).
docs *args:
    {{python}} -m chaos_tui.docs_gen {{args}}

# The static checks CI runs before the tests: ruff (lint and format), mypy, import contracts.
lint:
    {{python}} -m ruff check .
    {{python}} -m ruff format --check .
    {{python}} -m mypy
    {{python}} -c 'import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())'
