"""Profile names are written once (chaos_tui/profiles.py); every target serves exactly those."""

from chaos_tui.profiles import PROFILE_NAMES
from chaos_tui.sandbox.services import PROFILES
from chaos_tui.targets.docker import PROFILE_SERVICES


def test_every_target_serves_exactly_the_named_profiles():
    assert tuple(PROFILES) == PROFILE_NAMES
    assert tuple(PROFILE_SERVICES) == PROFILE_NAMES


def test_every_scenario_asks_for_a_named_profile():
    from chaos_tui.scenarios import SCENARIOS

    assert SCENARIOS
    for cls in SCENARIOS.values():
        assert cls.profile in PROFILE_NAMES, cls.name
