"""Entry points for the offline test bed's containers: the sandbox's parts, listening on the
container's network instead of loopback. Test bed only: PostgreSQL trusts every address, which
is fine on an isolated compose network and nowhere else.

    python -m chaos_tui.sandbox.container postgres [--port 5432] [--data /data/pg]
    python -m chaos_tui.sandbox.container collector --sink-url http://openobserve:5080
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from chaos_tui.sandbox import collector, postgres

PG_USER = "chaostui"


def run_postgres(port: int, root: Path) -> None:
    user = PG_USER if postgres.running_as_root() else None
    bin_dir, data = postgres.prepare_data_dir(root, user)
    postgres.clear_stale_lock(data)
    hba = data / "pg_hba.conf"
    if "chaos-tui test bed" not in hba.read_text():
        with open(hba, "a") as fh:
            fh.write(
                "# chaos-tui test bed: the compose network is isolated\nhost all all all trust\n"
            )
    command = postgres.server_command(bin_dir, data, port)
    command[command.index("listen_addresses=127.0.0.1")] = "listen_addresses=*"
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.setgid(entry.pw_gid)
        os.setgroups([])
        os.setuid(entry.pw_uid)
    os.execv(command[0], command)  # postgres becomes the container's main process


def run_collector(sink_url: str, grpc_port: int, http_port: int) -> None:
    command = collector.command(
        collector.binary(),
        grpc_port,
        http_port,
        sink_url,
        state_dir=Path("/tmp/rotel"),
        host="0.0.0.0",
    )
    os.execv(command[0], command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="service", required=True)
    pg = sub.add_parser("postgres")
    pg.add_argument("--port", type=int, default=5432)
    pg.add_argument("--data", type=Path, default=Path("/data/pg"))
    col = sub.add_parser("collector")
    col.add_argument("--sink-url", required=True)
    col.add_argument("--grpc-port", type=int, default=4317)
    col.add_argument("--http-port", type=int, default=4318)
    args = parser.parse_args()
    if args.service == "postgres":
        run_postgres(args.port, args.data)
    else:
        run_collector(args.sink_url, args.grpc_port, args.http_port)


if __name__ == "__main__":
    main()
