import pytest
from pydantic import ValidationError

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.guard import (
    ENVIRONMENT_VARIABLES,
    Refusal,
    check_enabled,
    check_not_production,
    confirmation_matches,
    production_reason,
)
from chaos_tui.settings import Settings, unknown_variables

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize("value", ["production", "Production", " prod "])
def test_production_markers_refuse(value):
    with pytest.raises(Refusal) as exc:
        check_not_production(Settings(environment=value), NO_ENV)
    assert exc.value.code == ExitCode.PRODUCTION_LOCKOUT


def test_other_environments_pass():
    check_not_production(Settings(environment="staging"), NO_ENV)
    check_not_production(Settings(environment=""), NO_ENV)


def test_configured_marker():
    with pytest.raises(Refusal):
        check_not_production(Settings(environment="live", production_markers=["live"]), NO_ENV)


# Issue 12, point 8: every deploy variable counts, a marker is a word or a word's start, and
# one harmless (or empty) variable never hides another.
@pytest.mark.parametrize("variable", ENVIRONMENT_VARIABLES)
@pytest.mark.parametrize(
    "value",
    [
        "production",
        "prod",
        "prd",
        "PROD",
        "production-eu",
        "eu-prod",
        "eu_prd",
        "prod1",
        "Production EU",
    ],
)
def test_every_deploy_variable_names_production(variable, value):
    reason = production_reason(Settings(), {variable: value})
    assert reason is not None and reason.startswith(f"{variable}={value!r}")


@pytest.mark.parametrize("value", ["staging", "preprod", "dev", "reproduction", "", "  "])
def test_not_production(value):
    assert production_reason(Settings(), {name: value for name in ENVIRONMENT_VARIABLES}) is None


@pytest.mark.parametrize(
    "environ",
    [
        {"ENVIRONMENT": "", "CHAOS_ENVIRONMENT": "production"},
        {"ENVIRONMENT": "staging", "CHAOS_ENVIRONMENT": "production"},
        {"ENVIRONMENT": "dev", "ENV": "dev", "RAILS_ENV": "production"},
    ],
)
def test_one_harmless_variable_hides_no_other(environ):
    assert production_reason(Settings(), environ) is not None


@pytest.mark.parametrize("markers", ["[]", "", " , "])
def test_markers_extend_but_never_empty_the_list(monkeypatch, markers):
    monkeypatch.setenv("CHAOS_PRODUCTION_MARKERS", markers)
    assert Settings().production_markers == []
    assert production_reason(Settings(), {"ENVIRONMENT": "production"}) is not None


@pytest.mark.parametrize("markers", ['["live", "eu-main"]', "live, eu-main", "live,eu-main"])
def test_markers_as_json_or_comma_list(monkeypatch, markers):
    monkeypatch.setenv("CHAOS_PRODUCTION_MARKERS", markers)
    settings = Settings()
    assert settings.production_markers == ["live", "eu-main"]
    assert production_reason(settings, {"APP_ENV": "LIVE"}) is not None
    assert production_reason(settings, {"APP_ENV": "eu-main-2"}) is not None
    assert production_reason(settings, {"APP_ENV": "prod"}) is not None  # built-ins stay


@pytest.mark.parametrize("markers", ["[1]", "[unclosed", '["a", {"b": 1}]'])
def test_unreadable_markers_are_a_validation_error(monkeypatch, markers):
    monkeypatch.setenv("CHAOS_PRODUCTION_MARKERS", markers)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_chaos_variables_are_named_with_a_guess():
    found = unknown_variables(
        {
            "CHAOS_PROBE_HZ": "oops",
            "CHAOS_AGENT__PORTT": "1",
            "CHAOS_XYZZY": "1",
            # read by the tool although not settings, or settings by another spelling:
            "CHAOS_TESTBED": "1",
            "CHAOS_TESTBED_IMAGE": "x",
            "CHAOS_NATS_IMAGE": "x",
            "CHAOS_ENVIRONMENT": "dev",
            "CHAOS_AGENT": "{}",
            "chaos_agent__port": "0",
            "CHAOS_NATS_A_URL": "nats://x",
            "CHAOS_DOCKER__SIDECAR_IMAGE": "x",
            "PATH": "/bin",
        }
    )
    assert found == [
        "CHAOS_AGENT__PORTT (did you mean CHAOS_AGENT__PORT?)",
        "CHAOS_PROBE_HZ (did you mean CHAOS_PROBE_RATE_HZ?)",
        "CHAOS_XYZZY",
    ]


def test_every_chaos_variable_the_repo_mentions_is_known():
    """The compose files, justfile, README and code name CHAOS_* variables: none of them may
    draw the unknown-setting warning. (Names that are not variables are listed here.)"""
    import re
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    typos_on_purpose = {"tests/test_guard.py", "tests/test_cli_errors.py"}
    names = set()
    for name in set(files) - typos_on_purpose:
        path = root / name
        if path.is_file() and path.suffix not in {".svg", ".png", ".json"}:
            text = path.read_text(errors="replace")
            names |= set(re.findall(r"\bCHAOS_[A-Z0-9_]*[A-Z0-9]\b", text))
    not_variables = {"CHAOS_TUI", "CHAOS_NOT_ENABLED"}  # a test's command, an exit code
    assert len(names) > 20
    assert unknown_variables({n: "" for n in names - not_variables}) == []


def test_non_sandbox_target_needs_explicit_enable():
    with pytest.raises(Refusal) as exc:
        check_enabled("compose", target_is_sandbox=False, enabled=False)
    assert exc.value.code == ExitCode.CHAOS_NOT_ENABLED
    check_enabled("compose", target_is_sandbox=False, enabled=True)
    check_enabled("sandbox", target_is_sandbox=True, enabled=False)


def test_confirmation_is_exact():
    assert confirmation_matches("opa_restart", "opa_restart")
    assert not confirmation_matches("opa", "opa_restart")
    assert not confirmation_matches("OPA_RESTART", "opa_restart")
