"""The OTLP ingest sink that stands in for OpenObserve in the sandbox.

It takes OTLP/HTTP on OpenObserve's paths (`POST /api/{org}/v1/logs`, `.../v1/traces`, and
`.../v1/metrics` only because rotel insists on a metrics endpoint), counts every log record and
span, and remembers the `chaos.marker` attribute of each, so a scenario can ask how many of the
markers it sent reached the backend. It answers the one query the scenario sends through
OpenObserve's own search API (`POST /api/{org}/_search`; OpenObserve flattens `chaos.marker`
to the column `chaos_marker`), so the same client works against a real OpenObserve; and, for a
person with curl, `GET /api/{org}/markers?prefix=P`. The spans and log records of a chaos-tui
run (those with a `chaos.run_id` attribute: otlp_export.py) are kept in memory, for the last
runs only, and read back whole with `GET /api/{org}/runs/{run_id}`.

With `--store FILE` every record is appended to FILE before the 200 goes out, and the file is
read back at start: a 200 means the record survives a SIGKILL of the sink, as it would in a
real backend. A request whose client hung up before the sink read it is not counted. Note
that rotel does not hang up when its request times out: a paused sink still reads and counts,
on SIGCONT, requests rotel has given up on (and, with retries, sent again). That is why a
pause shows duplicates and a pause without retries loses next to nothing.

Run it as `python -m chaos_tui.sandbox.otlp_sink --port P [--store FILE] [--ready-file F]`.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
import re
import zlib
from collections import Counter, OrderedDict
from pathlib import Path
from urllib.parse import parse_qs

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from chaos_tui.sandbox.asgi import (
    ServeError,
    fail,
    listen,
    send_bytes,
    send_json,
    serve,
    setup_logging,
)

log = logging.getLogger("otlp_sink")

MARKER_ATTRIBUTE = "chaos.marker"
RUN_ATTRIBUTE = "chaos.run_id"
RUNS_KEPT = 100  # chaos-tui runs whose spans and logs are kept (in memory) for reading back
MAX_BODY = 16 * 1024 * 1024  # far above any batch rotel sends; refuses a runaway client
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
# uvicorn closes a connection idle for 5 s by default. With that, every 5 s pause of the sink
# ended with one ECONNRESET at rotel, which rotel does not retry: it dropped that batch (1-2
# markers lost per pause, retries on; none with a 120 s keep-alive). The idle timers expire
# during the pause and close connections rotel has just reused. The loss takes both a backend
# that closes idle connections mid-stall and rotel's not retrying a reset; the scenario is about
# the stall, so the sink keeps idle connections longer than any stall the sandbox makes.
# `--keep-alive-s 5` brings the race back for whoever wants to study it.
KEEP_ALIVE_S = 120

# kind of telemetry -> (request type, empty response type)
SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- what was received --------------------------------------------------------------------

# The query openobserve_stall sends (chaos_tui.probes.otlp_markers.marker_count_sql).
MARKER_COUNT_SQL = re.compile(
    r"SELECT chaos_marker, count\(\*\) AS n FROM \"(?P<stream>[A-Za-z0-9_-]+)\" "
    r"WHERE chaos_marker LIKE '(?P<prefix>[A-Za-z0-9_-]*)%' GROUP BY chaos_marker"
)


class MarkerStore:
    """Per organisation: how many records arrived and how often each marker was seen."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.records: Counter[str] = Counter()
        self.markers: dict[str, Counter[str]] = {}
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._load(path)
            # Kept open for the sink's life (one append per accepted request); closed in close().
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def _load(self, path: Path) -> None:
        # One line per record: "org<TAB>marker", marker empty for a record without one.
        # A torn last line (killed mid-write) has no newline and is ignored: its request
        # never got its 200, so the collector still owns it.
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        whole = text.rfind("\n") + 1
        if whole < len(text):  # cut the torn tail, or the next record would be glued to it
            with open(path, "r+b") as fh:
                fh.truncate(len(text[:whole].encode("utf-8")))
        for line in text[:whole].splitlines(keepends=True):
            if not line.endswith("\n") or "\t" not in line:
                continue
            org, marker = line.rstrip("\n").split("\t", 1)
            self._count(org, [marker] if marker else [], 1)

    def _count(self, org: str, markers: list[str], records: int) -> None:
        self.records[org] += records
        if markers:
            self.markers.setdefault(org, Counter()).update(markers)

    def add(self, org: str, markers: list[str], records: int) -> None:
        if self._fh is not None and records:
            lines = [f"{org}\t{m}\n" for m in markers]
            lines += [f"{org}\t\n"] * (records - len(markers))
            self._fh.write("".join(lines))
            self._fh.flush()  # in the page cache before the 200: survives a kill of the sink
        self._count(org, markers, records)

    def query(self, org: str, prefix: str) -> dict:
        seen = self.markers.get(org, Counter())
        return {
            "records": self.records[org],
            "markers": {m: n for m, n in sorted(seen.items()) if m.startswith(prefix)},
        }

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _marker_of(attributes) -> str | None:
    for kv in attributes:
        if kv.key == MARKER_ATTRIBUTE and kv.value.WhichOneof("value") == "string_value":
            return kv.value.string_value
    return None


def _records(kind: str, request):
    """Every log record or span of one export request (metrics carry no markers)."""
    if kind == "logs":
        return (r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records)
    if kind == "traces":
        return (s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
    return ()


def collect(kind: str, request) -> tuple[list[str], int]:
    """(markers, record count) of one export request. Metrics carry no markers and count 0."""
    markers: list[str] = []
    records = 0
    for record in _records(kind, request):
        records += 1
        marker = _marker_of(record.attributes)
        if marker is not None:
            markers.append(marker)
    return markers, records


class RunRecords:
    """The spans and log records of the last chaos-tui runs, by organisation and run id, as
    plain JSON (ids in hex, times in unix nanoseconds, attributes as a flat object)."""

    def __init__(self, kept: int = RUNS_KEPT) -> None:
        self.kept = kept
        self.runs: OrderedDict[tuple[str, str], dict[str, list[dict]]] = OrderedDict()

    def add(self, org: str, kind: str, request) -> None:
        for record in _records(kind, request):
            attrs = {kv.key: _plain(kv.value) for kv in record.attributes}
            run_id = attrs.get(RUN_ATTRIBUTE)
            if not isinstance(run_id, str):
                continue
            key = (org, run_id)
            entry = self.runs.setdefault(key, {"spans": [], "logs": []})
            self.runs.move_to_end(key)
            if kind == "traces":
                entry["spans"].append(
                    {
                        "name": record.name,
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "parent_span_id": record.parent_span_id.hex(),
                        "start_ns": record.start_time_unix_nano,
                        "end_ns": record.end_time_unix_nano,
                        "attributes": attrs,
                    }
                )
            else:
                entry["logs"].append(
                    {
                        "time_ns": record.time_unix_nano,
                        "severity_number": record.severity_number,
                        "body": _plain(record.body),
                        "trace_id": record.trace_id.hex(),
                        "attributes": attrs,
                    }
                )
            while len(self.runs) > self.kept:
                self.runs.popitem(last=False)

    def get(self, org: str, run_id: str) -> dict[str, list[dict]]:
        return self.runs.get((org, run_id), {"spans": [], "logs": []})


def _plain(value):
    """An OTLP AnyValue as the JSON value it holds (arrays and maps as their text)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value", "bytes_value"):
        return str(getattr(value, kind))
    return getattr(value, kind)


# -- decoding -----------------------------------------------------------------------------


def decode(kind: str, body: bytes, content_type: str, content_encoding: str):
    request_type = SIGNALS[kind][0]
    encoding = content_encoding.strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise BadRequest(415, f"unsupported Content-Encoding {content_encoding!r}")
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(400, f"cannot decompress body: {exc}") from exc
    if content_type in PROTOBUF_TYPES:
        request = request_type()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(400, f"not an OTLP protobuf {request_type.__name__}: {exc}") from exc
        return request
    if content_type == "application/json":
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("the body is not a JSON object")
            _hex_ids_to_base64(data)
            return json_format.ParseDict(data, request_type(), ignore_unknown_fields=True)
        except (ValueError, TypeError, json_format.ParseError) as exc:
            raise BadRequest(400, f"not an OTLP JSON {request_type.__name__}: {exc}") from exc
    raise BadRequest(415, f"unsupported Content-Type {content_type!r}")


ID_FIELDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def _hex_ids_to_base64(node) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    pass  # not hex: leave it for the parser to judge
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


# -- the ASGI app -------------------------------------------------------------------------


class Sink:
    def __init__(self, store: MarkerStore) -> None:
        self.store = store
        self.run_records = RunRecords()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # run with lifespan="off": nothing to set up
        method, parts = scope["method"], scope["path"].strip("/").split("/")
        try:
            if parts == ["healthz"]:
                _allow(method, "GET")
                await send_json(send, 200, {"status": "ok"})
            elif len(parts) == 4 and parts[0] == "api" and parts[2] == "v1" and parts[3] in SIGNALS:
                _allow(method, "POST")
                await self._export(scope, receive, send, parts[1], parts[3])
            elif len(parts) == 3 and parts[0] == "api" and parts[2] == "_search":
                _allow(method, "POST")
                await self._search(receive, send, parts[1])
            elif len(parts) == 3 and parts[0] == "api" and parts[2] == "markers":
                _allow(method, "GET")
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                prefix = query.get("prefix", [""])[0]
                await send_json(send, 200, self.store.query(parts[1], prefix))
            elif len(parts) == 4 and parts[0] == "api" and parts[2] == "runs":
                _allow(method, "GET")
                await send_json(send, 200, self.run_records.get(parts[1], parts[3]))
            else:
                raise BadRequest(404, f"no route for {scope['path']}")
        except BadRequest as exc:
            await send_json(send, exc.status, {"error": str(exc)})

    async def _search(self, receive, send, org: str) -> None:
        """OpenObserve's search API, for the marker count query only."""
        try:
            sql = json.loads(await _read_body(receive) or b"{}")["query"]["sql"]
        except (ValueError, KeyError, TypeError):
            raise BadRequest(400, 'expected {"query": {"sql": ...}}') from None
        match = MARKER_COUNT_SQL.fullmatch(sql.strip())
        if match is None:
            raise BadRequest(
                400, "this sink answers only the marker count query: " + MARKER_COUNT_SQL.pattern
            )
        counts = self.store.query(org, match["prefix"])["markers"]
        hits = [{"chaos_marker": m, "n": n} for m, n in counts.items()]
        await send_json(
            send,
            200,
            {
                "took": 0,
                "hits": hits,
                "total": len(hits),
                "from": 0,
                "size": len(hits),
                "scan_size": 0,
            },
        )

    async def _export(self, scope, receive, send, org: str, kind: str) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive)
        if body is None:
            return  # the client left before we read its request: nothing to count, no one to tell
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        request = decode(kind, body, content_type, headers.get("content-encoding", ""))
        markers, records = collect(kind, request)
        self.store.add(org, markers, records)
        self.run_records.add(org, kind, request)
        response = SIGNALS[kind][1]()
        if content_type == "application/json":
            await send_bytes(
                send, 200, json_format.MessageToJson(response).encode(), "application/json"
            )
        else:
            await send_bytes(send, 200, response.SerializeToString(), "application/x-protobuf")


def _allow(method: str, expected: str) -> None:
    if method != expected:
        raise BadRequest(405, f"use {expected}")


async def _read_body(receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise BadRequest(413, f"body larger than {MAX_BODY} bytes")
        if not message.get("more_body", False):
            return bytes(body)


def main() -> None:
    parser = argparse.ArgumentParser(description="OTLP/HTTP sink standing in for OpenObserve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", default=None, help="append every record here; reload at start")
    parser.add_argument("--ready-file", default=None)
    parser.add_argument(
        "--keep-alive-s",
        type=int,
        default=KEEP_ALIVE_S,
        help="close idle client connections after this long",
    )
    args = parser.parse_args()
    setup_logging()
    try:
        sock = listen(args.host, args.port)
    except ServeError as exc:
        fail("otlp_sink", str(exc))
    store = MarkerStore(Path(args.store) if args.store else None)
    loaded = sum(store.records.values())
    log.info("listening on %s:%d (%d records loaded from the store)", args.host, args.port, loaded)
    try:
        # The stdlib loop, not uvloop: every number in collector.py was measured on it.
        serve(
            Sink(store),
            sock,
            ready_file=args.ready_file,
            keep_alive_s=args.keep_alive_s,
            fast_loop=False,
        )
    finally:
        store.close()


if __name__ == "__main__":
    main()
