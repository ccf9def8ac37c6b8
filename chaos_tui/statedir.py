"""The state directory's hygiene: ours alone, and no symbolic link in it is ever followed.

Everything the tool trusts (the agent's token, its lease journal, the lock files, the process
table) lives in the state dir, so a state dir someone else can write to, or a link planted in
it, would let them redirect what we write or read. `prepare_state_dir` runs once per command
(the CLI calls it as it loads the settings; the agent is started through the CLI too): it
makes the directory 0700 if it is missing and refuses, in one line, a directory that is not
ours or a link at any entry we use. The files we open ourselves are opened with O_NOFOLLOW as
well, so a link that appears later is refused there rather than followed.

Standard library only: this runs before anything else is imported.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

# Every entry the tool uses inside the state dir (relative paths). A link at any of them is
# refused. Keep this list in step with what the code writes.
ENTRIES = (
    "sandbox.json",
    "sandbox.lock",
    "logs",
    "results",
    "pg",
    "pg/home",
    "pg/data",
    "pg/dist",
    "nats",
    "mesh",
    "sink",
    "rotel",
    "relay.ready",
    "opa.ready",
    "gateway.ready",
    "sink.ready",
    "agent",
    "agent/agent.lock",
    "agent/token",
    "agent/agent.json",
    "agent/agent.log",
    "agent/spawned.json",
    "agent/halted",
    "agent/leases",
    "agent/history.jsonl",
    "agent/history.1.jsonl",
    "agent/heartbeat",
    "agent/guardian.json",
    "agent/guardian-replacements.json",
    "runs",
    "users",
)
# Directories whose entries we create by name (logs, lease files, result folders): each entry
# is checked too. One listing each, so the check stays cheap.
LISTED = ("logs", "agent/leases", "results", "runs", "users")


class StateDirProblem(OSError):
    """The state dir (or something in it) is unsafe to use: one line for the user. An OSError,
    so every path that already reports a file problem in one line reports this one too."""


def prepare_state_dir(path: Path) -> Path:
    """Make the state dir (0700, parents as needed) or check the existing one; then check every
    entry we use. Raises StateDirProblem naming the path and what is wrong."""
    path = Path(path)
    _make_private(path)
    _check_owned(path)
    for rel in ENTRIES:
        refuse_link(path / rel)
    for rel in LISTED:
        try:
            with os.scandir(path / rel) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        raise _link(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return path


def refuse_link(path: Path) -> None:
    """Raise StateDirProblem if `path` is a symbolic link (missing is fine)."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISLNK(info.st_mode):
        raise _link(path)


def open_lock_file(path: Path) -> int:
    """Open (creating it 0600) a lock file without following a link; returns the fd. The file
    is not truncated: only its flock matters."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link(path) from None
        raise


def open_dir_nofollow(path: Path) -> int:
    """An fd on the directory `path` itself, refusing a link there (for fchmod, fsync)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise _link(path) from None
        raise


def _make_private(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # whatever the umask
    except FileExistsError:
        pass  # made by another process a moment ago: checked below like any other
    except OSError as exc:
        raise StateDirProblem(f"cannot create the state dir {path}: {exc.strerror}") from None


def _check_owned(path: Path) -> None:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise StateDirProblem(f"cannot use the state dir {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise StateDirProblem(
            f"the state dir {path} is a symbolic link: chaos-tui follows "
            "none; point CHAOS_STATE_DIR at the directory itself"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirProblem(f"the state dir {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise StateDirProblem(
            f"the state dir {path} belongs to {_user(info.st_uid)}, not to "
            "you: use a state dir of your own (CHAOS_STATE_DIR)"
        )
    if info.st_mode & 0o022:
        raise StateDirProblem(
            f"the state dir {path} is writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): chmod 700 it"
        )


def _link(path: Path) -> StateDirProblem:
    return StateDirProblem(
        f"{path} is a symbolic link: chaos-tui follows no link in its state dir (remove it)"
    )


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name!r}"
    except KeyError:
        return f"uid {uid}"
