import pytest

from chaos_tui.core.guard import Refusal, check_enabled, check_not_production, confirmation_matches
from chaos_tui.exit_codes import ExitCode
from chaos_tui.settings import Settings


@pytest.mark.parametrize("value", ["production", "Production", " prod "])
def test_production_markers_refuse(value):
    with pytest.raises(Refusal) as exc:
        check_not_production(Settings(environment=value))
    assert exc.value.code == ExitCode.PRODUCTION_LOCKOUT


def test_other_environments_pass():
    check_not_production(Settings(environment="staging"))
    check_not_production(Settings(environment=""))


def test_configured_marker():
    with pytest.raises(Refusal):
        check_not_production(Settings(environment="live", production_markers=["live"]))


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
