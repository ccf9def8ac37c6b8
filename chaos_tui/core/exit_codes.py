"""Process exit codes: one meaning each, shared by every entry point."""

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    FAIL = 1  # an invariant broke
    USAGE = 2  # bad flag, unknown scenario, unwritable output: nothing was started
    ABORTED = 3  # steady state did not hold: nothing was injected
    HEAL_FAILED = 4  # a fault could not be undone: look at the target now
    ERROR = 5  # the run itself broke (a budget blown, a target that would not start); healed
    PRODUCTION_LOCKOUT = 6  # ENVIRONMENT says production: nothing was started
    CHAOS_NOT_ENABLED = 7  # a non-sandbox target without CHAOS_ENABLED / --enable-chaos
    INTERRUPTED = 130  # SIGINT / SIGTERM / SIGHUP (or the terminal gone); healed


OUTCOME_EXIT_CODES = {
    "pass": ExitCode.PASS,
    "fail": ExitCode.FAIL,
    "aborted": ExitCode.ABORTED,
    "error": ExitCode.ERROR,
    "interrupted": ExitCode.INTERRUPTED,
}
