"""The reference job worker as the compose stack runs it (profile chaos-queue, service
job-worker): find where its broker connections must go, then run `job_worker` as the sandbox
does.

    python -m chaos_tui.sandbox.compose_job_worker --proxy-ports 16379,16380 [--threads 4]

- The sentinels name the primary by its container address; the worker must dial the fault
  agent's proxy in front of that node instead, which listens on this network's gateway (the
  host) on the port given for it. So the nodes' names are resolved here into the
  `--through ADDRESS=PROXY` map job_worker takes. A node keeps its address across a kill and a
  start as long as nothing else joins the network meanwhile (Docker hands out the lowest
  free address), which is what the sentinels rely on too.
- Injectors: the fault agent listens on the host's loopback only, so the worker cannot poll
  it; a run mirrors the agent's live injectors into the ledger (`CHAOS_INJECTORS_MIRROR`,
  read by chaos_tui.inject with the same deadlines and fail safe).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path

from chaos_tui.sandbox import job_worker

NODES = ("valkey-1", "valkey-2")
SENTINELS = ("sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379")
LEDGER_URL = "redis://ledger:6379/0"
VALKEY_PORT = 6379
RESOLVE_FOR_S = 60.0  # the nodes start with this service (depends_on): they have names soon
READY_FILE = "/tmp/job-worker.ready"

log = logging.getLogger("compose_job_worker")


def default_gateway(route_table: str = "/proc/net/route") -> str:
    """The IPv4 default gateway of this container: the compose network's bridge, the host."""
    for line in Path(route_table).read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    raise SystemExit("compose_job_worker: no default route: is this container on a network?")


def resolve(name: str, for_s: float = RESOLVE_FOR_S) -> str:
    deadline = time.monotonic() + for_s
    while True:
        try:
            return socket.gethostbyname(name)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"compose_job_worker: {name} has no address: {exc}") from None
            time.sleep(0.5)


def through_map(nodes: dict[str, str], gateway: str, ports: list[int]) -> str:
    """`node-ip:6379=gateway:proxy-port,...`, in the nodes' order."""
    return ",".join(
        f"{nodes[name]}:{VALKEY_PORT}={gateway}:{port}"
        for name, port in zip(NODES, ports, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy-ports", required=True, help="the proxies' ports, one a node")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ports = [int(p) for p in args.proxy_ports.split(",")]
    if len(ports) != len(NODES):
        parser.error(f"--proxy-ports needs {len(NODES)} ports, one a node")
    through = through_map({n: resolve(n) for n in NODES}, default_gateway(), ports)
    log.info("broker connections through %s", through)
    os.environ.setdefault("CHAOS_INJECTORS_MIRROR", LEDGER_URL)
    return job_worker.main(
        [
            "--sentinels",
            ",".join(SENTINELS),
            "--through",
            through,
            "--ledger-url",
            LEDGER_URL,
            "--threads",
            str(args.threads),
            "--worker-id",
            os.environ.get("CHAOS_WORKER_ID") or socket.gethostname(),
            "--ready-file",
            READY_FILE,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
