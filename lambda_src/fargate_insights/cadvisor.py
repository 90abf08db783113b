"""Pull the few cAdvisor series that pod metrics need out of a kubelet `/metrics/cadvisor` payload.

A Fargate node's payload is 100-200 KB of Prometheus text, of which a few dozen lines matter. Parsing
it all (as a general Prometheus parser does) would dominate the collector's CPU, so this module finds
the wanted lines with one regular-expression scan in C, which also drops the node-level rows (most of
them), and fully validates only the lines it keeps. It never raises on input: a line that does not match the
text format is counted and ignored, never turned into a value. The label sets of pod rows are remembered
across payloads (a bounded module-level map): the same pod's rows a minute later are read from their name,
value and timestamp, with exactly the result a full read gives.

"The text format" is what the reference parser (Go, prometheus/common expfmt) accepts. The kubelet
writes every line in one strict shape, which the fast path expects; the optional blanks and tabs the
format allows (before and inside the label set, before the value) take a slower, tolerant parse that
only such lines pay for. Like the Go parser, and unlike prometheus_client's laxer one, a line ending in
CR (a CRLF payload) or in trailing blanks is malformed: the kubelet never writes one.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

# The families the eight pod metrics are computed from.
CPU_USAGE: Final = "container_cpu_usage_seconds_total"
CPU_QUOTA: Final = "container_spec_cpu_quota"
CPU_PERIOD: Final = "container_spec_cpu_period"
MEMORY_WORKING_SET: Final = "container_memory_working_set_bytes"
MEMORY_LIMIT: Final = "container_spec_memory_limit_bytes"
NETWORK_RX: Final = "container_network_receive_bytes_total"
NETWORK_TX: Final = "container_network_transmit_bytes_total"
START_TIME: Final = "container_start_time_seconds"

WANTED_FAMILIES: Final = (
    CPU_USAGE,
    CPU_QUOTA,
    CPU_PERIOD,
    MEMORY_WORKING_SET,
    MEMORY_LIMIT,
    NETWORK_RX,
    NETWORK_TX,
    START_TIME,
)

_ALTERNATION: Final = b"|".join(re.escape(name.encode()) for name in WANTED_FAMILIES)
# A line that starts with optional blanks, a wanted family, optional blanks and '{'. All the
# alternatives start with "container_", which the regex compiler factors out.
_HEAD: Final = rb"[ \t]*(?:" + _ALTERNATION + rb")[ \t]*\{"
# Whole candidate lines, newline-terminated (a body cut short can end in a truncated number). Node-level
# rows, most candidates, are matched but not captured, so they are dropped in C: a line containing
# `,pod=""` has an empty pod label, because inside a well-formed label value every quote is escaped (a
# malformed line dropped here would have given no value anyway). A row with `pod` as its first label is
# kept and parsed: the kubelet writes it last, and testing for `{pod=""` too made the scan 10% slower.
_ROW: Final = rb"(?=" + _HEAD + rb')(?:[^\n]*,pod=""[^\n]*|([^\n]*))(?=\n)'
_CANDIDATE_LINE: Final = re.compile(rb"\n" + _ROW)
_FIRST_CANDIDATE_LINE: Final = re.compile(_ROW)
_STRICT_HEADS: Final = tuple(name.encode() + b"{" for name in WANTED_FAMILIES)

# Label values in "unrolled loop" form, so that the regex engine runs through plain text in one step.
_VALUE: Final = rb'"[^"\\\n]*(?:\\[\\"n][^"\\\n]*)*"'
_LABEL: Final = rb"[a-zA-Z_][a-zA-Z0-9_]*=" + _VALUE
# One whole sample line with labels in the shape the kubelet writes: no optional blanks at all.
_SAMPLE_LINE: Final = re.compile(
    rb"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>(?:"
    + _LABEL
    + rb"(?:,"
    + _LABEL
    + rb")*,?)?)\} (?P<value>[^ \t\n]+)(?: (?P<ts>-?[0-9]{1,19}))?"
)
# The same line as the Go parser reads it: blanks/tabs allowed before the name, before '{', after '{'
# and ',', around '=', before ',' and '}', any number (or none) before the value, one or more before
# the timestamp, none at the end. The tokens are the same as the strict form's wherever both match.
_B: Final = rb"[ \t]*"
_LOOSE_LABEL: Final = rb"[a-zA-Z_][a-zA-Z0-9_]*" + _B + rb"=" + _B + _VALUE + _B
_LOOSE_SAMPLE_LINE: Final = re.compile(
    _B
    + rb"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    + _B
    + rb"\{"
    + _B
    + rb"(?P<labels>(?:"
    + _LOOSE_LABEL
    + rb"(?:,"
    + _B
    + _LOOSE_LABEL
    + rb")*(?:,"
    + _B
    + rb")?)?)\}"
    + _B
    + rb"(?P<value>[^ \t\n]+)(?:[ \t]+(?P<ts>[+-]?[0-9]+))?"
)
# On the label set decoded once as UTF-8 (the line regex has validated its shape).
_LABEL_PAIR: Final = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\\n]*(?:\\[\\"n][^"\\\n]*)*)"')
_LOOSE_LABEL_PAIR: Final = re.compile(
    r'([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"([^"\\\n]*(?:\\[\\"n][^"\\\n]*)*)"'
)
# Exactly what Go's strconv.ParseFloat takes once the text parser has refused 'p', 'P' and '_':
# decimal with optional exponent, inf/infinity in any case with a sign, nan in any case without one.
_FLOAT: Final = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[Ii][Nn][Ff](?:[Ii][Nn][Ii][Tt][Yy])?)"
    rb"|[Nn][Aa][Nn]"
)
_ESCAPES: Final = re.compile(r"\\(.)")
_UNESCAPE: Final = {"\\": "\\", '"': '"', "n": "\n"}
# Pod totals live on rows with an empty container and image; the network on sandbox rows
# (container="" with a pause image, or container="POD" with Docker). Other rows are skipped unparsed.
# `{` first: the kubelet writes `container` as the first label, so that test ends at once.
_EMPTY_CONTAINER: Final = (b'{container=""', b',container=""')
_DOCKER_SANDBOX: Final = (b'{container="POD"', b',container="POD"')
_EMPTY_IMAGE: Final = (b',image=""', b'{image=""')
_NETWORK_PREFIX: Final = b"container_network_"
_NETWORK_RX_HEAD: Final = NETWORK_RX.encode()
_NETWORK_TX_HEAD: Final = NETWORK_TX.encode()
_CONTAINER_LABEL: Final = b'container="'
_CONTAINER_LABELS: Final = (b'{container="', b',container="')
_IMAGE_LABELS: Final = (b',image="', b'{image="')
# Pod cgroup names: cgroupfs `pod<uid>`, systemd `kubepods-<qos>-pod<uid_with_underscores>.slice`.
_POD_CGROUP: Final = re.compile(r"(?:^|-)pod([0-9a-fA-F][0-9a-fA-F_-]{7,63})(?:\.slice)?$")


class Sample(NamedTuple):
    """A value with the timestamp cAdvisor printed for it (ms since the epoch), if any.

    A named tuple rather than a frozen dataclass: made for every kept line, and three times cheaper.
    """

    value: float
    timestamp_ms: int | None


@dataclass(slots=True)
class PodSeries:
    """What one payload says about one pod: its pod-cgroup totals and its sandbox network counters."""

    namespace: str
    pod: str
    uid: str
    cpu_usage_seconds: Sample | None = None
    cpu_quota: float | None = None
    cpu_period: float | None = None
    memory_working_set: Sample | None = None
    memory_limit: float | None = None
    start_time_seconds: float | None = None
    # (sandbox cgroup id, interface) -> counter sample.
    network_rx: dict[tuple[str, str], Sample] = field(default_factory=dict)
    network_tx: dict[tuple[str, str], Sample] = field(default_factory=dict)
    # Fields that appeared more than once with different values: never trusted.
    conflicts: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.uid


@dataclass(slots=True)
class Extraction:
    """The pods found in a payload, and how many candidate lines had to be ignored as malformed."""

    pods: dict[str, PodSeries] = field(default_factory=dict)
    malformed_lines: int = 0


def extract(payload: bytes) -> Extraction:
    """Extract every pod's series from a payload; never raises, never guesses.

    Only lines terminated by a newline are used: a body cut short can end in a truncated number.
    """
    result = Extraction()
    # The pod-cgroup rows of six families share one label set, the sandbox's rx and tx rows another:
    # each distinct label set is decoded and routed once per payload.
    label_sets: _LabelSets = {}
    lines = _CANDIDATE_LINE.findall(payload)
    first = _FIRST_CANDIDATE_LINE.match(payload)
    if first is not None and first.group(1):
        lines.insert(0, first.group(1))
    # (network family, pod uid) of malformed network lines: such a line may have been one of the pod's
    # interfaces, and a sum over the others would be too low. The uid is "" when the labels could not
    # be read, and then every pod's sum of that family is unsure (a Fargate payload holds one pod).
    unsure_sums: set[tuple[str, str]] = set()
    known = _KNOWN_LABEL_SETS
    tail = _TAIL.fullmatch
    for line in lines:
        if not line:
            continue  # a node-level row
        # A row whose label set was read before, in this payload or an earlier one (the same pod's rows
        # a minute ago): only its name, value and timestamp are read.
        close = line.rfind(b"} ")
        brace = line.find(b"{")
        route = None
        if 0 < brace < close:
            route = known.get((line[brace + 1 : close], line.startswith(_NETWORK_PREFIX)))
        if route is not None:
            family = _FAMILY.get(line[:brace])
            match = tail(line, close + 1)
            sample = None if match is None else _sample(match[1], match[2])
            if family is not None and sample is not None:
                _put(family, route, sample, result)
                continue
            # not a wanted name written plainly, or not a well-formed tail: read in full below
        if _surely_not_a_pod_row(line):
            continue
        if not _apply_line(line, result, label_sets, unsure_sums):
            result.malformed_lines += 1
    for uid, pod in result.pods.items():
        for family, unsure_uid in unsure_sums:
            if unsure_uid in ("", uid):
                pod.conflicts.add(family)
        _drop_conflicts(pod)
    return result


def _note_unsure_sum(line: bytes, route: _Route | None, unsure_sums: set[tuple[str, str]]) -> None:
    """Record that a malformed network line leaves a sum unsure: its sandbox's pod's, when its labels
    could be read (none when they name no sandbox), else every pod's."""
    head = line.lstrip(b" \t")
    if head.startswith(_NETWORK_RX_HEAD):
        family = NETWORK_RX
    elif head.startswith(_NETWORK_TX_HEAD):
        family = NETWORK_TX
    else:
        return
    if route is None:
        unsure_sums.add((family, ""))
    elif route.sandbox is not None:
        unsure_sums.add((family, route.sandbox[2]))


def _surely_not_a_pod_row(line: bytes) -> bool:
    """Whether the labels as written rule out a pod-cgroup or sandbox row, so the line need not be parsed.

    Exact: a line is ruled out only when its text leaves no doubt; any other line is parsed, and its
    parsed labels decide. The kubelet writes `container` first, which settles most lines at once.
    """
    labels = line.find(b"{") + 1
    if line.startswith(_CONTAINER_LABEL, labels):
        value = labels + len(_CONTAINER_LABEL)
        empty = line.startswith(b'"', value)
        if line.lstrip(b" \t").startswith(_NETWORK_PREFIX):
            return not empty and not line.startswith(b'POD"', value)
        # container="": a pod cgroup's row only with an empty or absent image; without blanks, a present
        # image label reads `,image="` and an empty one `,image=""`
        return not empty or (
            _EMPTY_IMAGE[0] not in line
            and _written(line, _IMAGE_LABELS[0])
            and not _labels_may_have_blanks(line)
        )
    # Another label order: the substring tests only rule a row out when its head and labels have no
    # blanks, as the kubelet writes them.
    return not _may_be_pod_row(line) and line.startswith(_STRICT_HEADS) and not _labels_may_have_blanks(line)


def _may_be_pod_row(line: bytes) -> bool:
    """Cheap substring tests that rule out app-container rows before any parsing.

    Exact only for labels written without blanks (`,container=""`), as the kubelet writes them. An
    absent label is an empty one, as in Prometheus' data model (and in `_route`).
    """
    empty_container = _empty_or_absent(line, _EMPTY_CONTAINER, _CONTAINER_LABELS)
    if line.startswith(_NETWORK_PREFIX):
        return empty_container or _DOCKER_SANDBOX[0] in line or _DOCKER_SANDBOX[1] in line
    return empty_container and _empty_or_absent(line, _EMPTY_IMAGE, _IMAGE_LABELS)


def _empty_or_absent(line: bytes, empty: tuple[bytes, bytes], present: tuple[bytes, bytes]) -> bool:
    """Whether a label is written empty, or may not be written at all (`label=""` cannot be made of a
    label value's end and what follows it, but `,label="` can: `x="a,label="` ends a value)."""
    if empty[0] in line or empty[1] in line:
        return True
    return not (_written(line, present[0]) or _written(line, present[1]))


def _written(line: bytes, label: bytes) -> bool:
    """Whether `label` (`,name="` or `{name="`) surely starts a label, not the end of another's value:
    found outside quotes. Decided only for a line without backslashes, where every quote opens or closes
    a value; with one, not surely (the line is then parsed)."""
    at = line.find(label)
    if at < 0 or b"\\" in line:
        return False
    while at >= 0:
        if line.count(b'"', 0, at) % 2 == 0:
            return True
        at = line.find(label, at + 1)
    return False


def _labels_may_have_blanks(line: bytes) -> bool:
    """Whether a blank or tab comes before the line's last '}', i.e. `_may_be_pod_row` may be wrong.

    In a well-formed line the last '}' closes the label set (a value or timestamp has none), so a
    line without blanks up to there has its labels in the kubelet's shape. Blanks inside label values
    also say yes here: that only costs a full parse of the line.
    """
    close = line.rfind(b"}")
    return close > 0 and (line.find(b" ", 0, close) >= 0 or line.find(b"\t", 0, close) >= 0)


class _Route(NamedTuple):
    """Where the rows with one label set go; worked out once per label set and payload.

    `totals` is set for a pod cgroup's rows (container="" and image=""), `sandbox` for a sandbox's
    (container="POD", or "" with an image), each as (namespace, pod, pod uid); neither for others.
    """

    totals: tuple[str, str, str] | None = None
    cpu_total: bool = True  # cpu="total" or no cpu label: not a per-CPU breakdown row
    sandbox: tuple[str, str, str] | None = None
    interface: tuple[str, str] = ("", "")  # (sandbox cgroup id, interface) of a sandbox's rows


_NOWHERE: Final = _Route()


def _route(labels: dict[str, str]) -> _Route:
    pod_name = labels.get("pod", "")
    namespace = labels.get("namespace", "")
    cgroup = labels.get("id", "")
    if not pod_name or not namespace or not cgroup:
        return _NOWHERE
    container = labels.get("container", "")
    image = labels.get("image", "")
    segments = cgroup.rstrip("/").split("/")
    pod_uid = _pod_uid(segments[-1])
    if pod_uid is not None:
        if container or image:
            return _NOWHERE
        return _Route(totals=(namespace, pod_name, pod_uid), cpu_total=labels.get("cpu", "total") == "total")
    is_sandbox = container == "POD" or (not container and bool(image))
    interface = labels.get("interface", "")
    if not is_sandbox or not interface or len(segments) < 2:
        return _NOWHERE
    parent_uid = _pod_uid(segments[-2])
    if parent_uid is None:
        return _NOWHERE
    return _Route(sandbox=(namespace, pod_name, parent_uid), interface=(cgroup, interface))


# (label set as written, read with the strict pair regex) -> its route, or None when invalid.
_LabelSets = dict[tuple[bytes, bool], _Route | None]
_FAMILY: Final = {name.encode(): name for name in WANTED_FAMILIES}
# Label sets read before -> their route, across payloads: a pod's rows keep their labels from one minute
# to the next, so reading them again is wasted. About four label sets a pod (its cgroup's, with and
# without `cpu="total"`, and its sandbox's per interface), 3 KB a pod with their routes (measured): room
# for ~15,000 pods in at most ~50 MB; a larger cluster clears it during each run and reads more in full.
KNOWN_LABEL_SETS_MAX: Final = 65536
_KNOWN_LABEL_SETS: dict[tuple[bytes, bool], _Route] = {}
# What follows a known row's label set: exactly the strict line pattern's tail.
_TAIL: Final = re.compile(rb" ([^ \t\n]+)(?: (-?[0-9]{1,19}))?")


def _apply_line(
    line: bytes, result: Extraction, label_sets: _LabelSets, unsure_sums: set[tuple[str, str]]
) -> bool:
    """Validate one candidate line and store what it says; False when it is malformed.

    The strict shape is tried first because every kubelet line has it; the loose one accepts the
    optional blanks of the format and, where both match, reads the same tokens.
    """
    match = _SAMPLE_LINE.fullmatch(line)
    label_pair = _LABEL_PAIR
    if match is None:
        match = _LOOSE_SAMPLE_LINE.fullmatch(line)
        label_pair = _LOOSE_LABEL_PAIR
        if match is None:
            _note_unsure_sum(line, None, unsure_sums)
            return False
    name, raw_labels, value_text, ts_text = match.groups()
    strict = label_pair is _LABEL_PAIR
    key = (raw_labels, strict)
    try:
        route = label_sets[key]
    except KeyError:
        try:
            labels = _parse_labels(raw_labels, label_pair)
        except (UnicodeDecodeError, ValueError):
            labels = None
        route = label_sets[key] = None if labels is None else _route(labels)
    if route is None:
        _note_unsure_sum(line, None, unsure_sums)
        return False
    sample = _sample(value_text, ts_text)
    if sample is None:
        _note_unsure_sum(line, route, unsure_sums)
        return False
    family = _FAMILY[name]  # the candidate scan only keeps lines of these families
    _put(family, route, sample, result)
    if strict and (route.totals is not None or route.sandbox is not None):
        _remember_label_set((raw_labels, name.startswith(_NETWORK_PREFIX)), route)
    return True


def forget_label_sets() -> None:
    """Read the next payloads as if none had been read before (benchmarks and tests of the first read)."""
    _KNOWN_LABEL_SETS.clear()


def _remember_label_set(key: tuple[bytes, bool], route: _Route) -> None:
    """Keep where a label set's rows go, for the same pod's next payloads; `key` is the label set and
    whether the row's family is a network one.

    Only label sets of the strict shape that route to a pod are kept, and a line is read with one only
    when it is exactly `name{labels} value` or `name{labels} value timestamp`, the name a wanted family
    and the rest the strict pattern's tail. Such a line matches the strict line pattern with the same
    name and labels: the label set ends at the first '}' outside quotes, so the split is the pattern's
    own, and a label set valid after one name is valid after any. `_surely_not_a_pod_row` would have
    let the line through as it did the first time: it decides from the label set's text (its substring
    tests all involve a quote, a brace or a blank before the last '}') and from whether the family is a
    network one, which is why that is part of the key. Skipped rows are not kept: the test costs about
    what a lookup would.
    """
    if len(_KNOWN_LABEL_SETS) >= KNOWN_LABEL_SETS_MAX:
        _KNOWN_LABEL_SETS.clear()  # pods come and go: start again rather than grow without bound
    _KNOWN_LABEL_SETS[key] = route


def _sample(value_text: bytes, ts_text: bytes | None) -> Sample | None:
    """A line's value and timestamp as Go's text parser reads them; None when either is malformed."""
    value = float(value_text) if _FLOAT.fullmatch(value_text) is not None else None
    if value is None:
        return None
    if math.isinf(value) and value_text.lstrip(b"+-")[:1] not in (b"i", b"I"):
        return None  # 1e999: Go's ParseFloat reports a range error, not an infinity
    if ts_text is None:
        return Sample(value, None)
    timestamp_ms = _parse_timestamp(ts_text)
    return None if timestamp_ms is None else Sample(value, timestamp_ms)


def _put(family: str, route: _Route, sample: Sample, result: Extraction) -> None:
    """Store a routed row's sample in its pod."""
    if route.totals is not None:
        # A pod cgroup's row: its pod exists even when the family is not one of its totals.
        pod = _pod(result, *route.totals)
        if family != CPU_USAGE or route.cpu_total:  # per-CPU rows: the total row is what the pod uses
            _store_pod_total(family, sample, pod)
    elif route.sandbox is not None and family in (NETWORK_RX, NETWORK_TX):
        pod = _pod(result, *route.sandbox)
        counters = pod.network_rx if family == NETWORK_RX else pod.network_tx
        previous = counters.get(route.interface)
        if previous is not None and previous != sample:
            pod.conflicts.add(family)
        counters[route.interface] = sample


def _parse_timestamp(text: bytes) -> int | None:
    """Go's ParseInt(text, 10, 64): optional sign, decimal digits, int64 range; None otherwise."""
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 19:
        return None
    # Leading zeros dropped first: int() refuses strings of more than 4300 digits, zeros included.
    value = int(digits or b"0")
    if text.startswith(b"-"):
        value = -value
    return value if -(2**63) <= value < 2**63 else None


def _parse_labels(raw: bytes, label_pair: re.Pattern[str]) -> dict[str, str] | None:
    """Decoded labels of a label set the line regex has validated; None for a duplicate or `__name__`."""
    labels: dict[str, str] = {}
    for name, value in label_pair.findall(raw.decode("utf-8")):
        if name in labels or name == "__name__":
            return None
        if "\\" in value:
            value = _ESCAPES.sub(lambda m: _UNESCAPE[m.group(1)], value)
        labels[name] = value
    return labels


def _store_pod_total(family: str, sample: Sample, pod: PodSeries) -> None:
    if family == CPU_USAGE:
        _set(pod, "cpu_usage_seconds", sample)
    elif family == MEMORY_WORKING_SET:
        _set(pod, "memory_working_set", sample)
    elif family == CPU_QUOTA:
        _set(pod, "cpu_quota", sample.value)
    elif family == CPU_PERIOD:
        _set(pod, "cpu_period", sample.value)
    elif family == MEMORY_LIMIT:
        _set(pod, "memory_limit", sample.value)
    elif family == START_TIME:
        _set(pod, "start_time_seconds", sample.value)


def _set(pod: PodSeries, attribute: str, value: Sample | float) -> None:
    previous = getattr(pod, attribute)
    if previous is not None and not _same(previous, value):
        pod.conflicts.add(attribute)
    setattr(pod, attribute, value)


def _same(a: Sample | float, b: Sample | float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _drop_conflicts(pod: PodSeries) -> None:
    """A series seen twice with different values has no trustworthy value: forget it."""
    for name in pod.conflicts:
        if name == NETWORK_RX:
            pod.network_rx.clear()
        elif name == NETWORK_TX:
            pod.network_tx.clear()
        else:
            setattr(pod, name, None)


def _pod(result: Extraction, namespace: str, name: str, uid: str) -> PodSeries:
    pod = result.pods.get(uid)
    if pod is None:
        pod = PodSeries(namespace=namespace, pod=name, uid=uid)
        result.pods[uid] = pod
    elif (pod.namespace, pod.pod) != (namespace, name):
        # Two pods claiming one cgroup: keep neither's values.
        pod.conflicts.update(_ALL_FIELDS)
    return pod


_ALL_FIELDS: Final = (
    "cpu_usage_seconds",
    "cpu_quota",
    "cpu_period",
    "memory_working_set",
    "memory_limit",
    "start_time_seconds",
    NETWORK_RX,
    NETWORK_TX,
)


# Two cgroup segments a pod (its own, and its sandbox's): room for the pods of a large cluster, so that a
# run does not evict what the next one needs (8,192 missed every lookup at 5,000 pods).
@functools.lru_cache(maxsize=65536)
def _pod_uid(segment: str) -> str | None:
    """The pod UID when a cgroup path segment is a pod cgroup, else None."""
    match = _POD_CGROUP.search(segment)
    if match is None:
        return None
    uid = match.group(1)
    return uid.replace("_", "-") if "_" in uid else uid
