"""A reader for Prometheus' text exposition format (what a `/metrics` endpoint serves), and
for OpenMetrics' text, which only adds to it. Enough to find one sample by name and labels:
comments and HELP/TYPE lines are skipped, label values are unescaped, NaN and the infinities
are read, timestamps are kept, exemplars are dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class MetricSample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    timestamp: float | None = None  # as written: ms in Prometheus' format, s in OpenMetrics


class ExpositionError(ValueError):
    """The text is not the exposition format; the message names the line."""


def parse_exposition(text: str) -> list[MetricSample]:
    samples = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # HELP, TYPE, EOF and plain comments carry no sample
        try:
            samples.append(parse_line(line))
        except ExpositionError as exc:
            raise ExpositionError(f"line {number}: {exc}: {line[:80]!r}") from None
    return samples


def parse_line(line: str) -> MetricSample:
    match = NAME.match(line)
    if match is None:
        raise ExpositionError("no metric name")
    name, at = match.group(), match.end()
    labels: dict[str, str] = {}
    if line[at : at + 1] == "{":
        labels, at = parse_labels(line, at + 1)
    rest = line[at:].split("#", 1)[0].split()  # after " # " comes an exemplar
    if not rest or len(rest) > 2 or (line[at : at + 1] not in (" ", "\t")):
        raise ExpositionError("expected a value and an optional timestamp after the name")
    value = parse_float(rest[0], "value")
    timestamp = parse_float(rest[1], "timestamp") if len(rest) == 2 else None
    return MetricSample(name, value, labels, timestamp)


def parse_labels(line: str, at: int) -> tuple[dict[str, str], int]:
    """Reads `name="value",...}` from `at`; returns the labels and where the `}` ends."""
    labels: dict[str, str] = {}
    while True:
        at = skip_spaces(line, at)
        if line[at : at + 1] == "}":
            return labels, at + 1
        match = LABEL_NAME.match(line, at)
        if match is None:
            raise ExpositionError(f"bad label name at column {at + 1}")
        key = match.group()
        at = skip_spaces(line, match.end())
        if line[at : at + 1] != "=":
            raise ExpositionError(f'expected ="..." after label {key}')
        at = skip_spaces(line, at + 1)
        if line[at : at + 1] != '"':
            raise ExpositionError(f'expected ="..." after label {key}')
        value, at = read_quoted(line, at + 1)
        if key in labels:
            raise ExpositionError(f"label {key} given twice")
        labels[key] = value
        at = skip_spaces(line, at)
        if line[at : at + 1] == ",":
            at += 1
        elif line[at : at + 1] != "}":
            raise ExpositionError(f"expected , or }} after label {key}")


def read_quoted(line: str, at: int) -> tuple[str, int]:
    """The label value from just after its opening quote to its closing one, unescaped."""
    out: list[str] = []
    while at < len(line):
        char = line[at]
        if char == '"':
            return "".join(out), at + 1
        if char == "\\" and at + 1 < len(line):
            nxt = line[at + 1]
            out.append(ESCAPES.get(nxt, "\\" + nxt))  # an unknown escape is kept as written
            at += 2
            continue
        out.append(char)
        at += 1
    raise ExpositionError("label value without its closing quote")


def skip_spaces(line: str, at: int) -> int:
    while line[at : at + 1] in (" ", "\t"):
        at += 1
    return at


def parse_float(text: str, what: str) -> float:
    # Python reads NaN, +Inf, -Inf and Inf in any case, as the format writes them.
    try:
        return float(text)
    except ValueError:
        raise ExpositionError(f"{what} {text!r} is not a number") from None


def select(samples: list[MetricSample], name: str, labels: dict[str, str]) -> list[MetricSample]:
    """The samples of that name whose labels include all of the given ones."""
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
