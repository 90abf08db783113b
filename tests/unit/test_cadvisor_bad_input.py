"""cadvisor.extract() on malformed and unusual Prometheus text: never raises, never turns a malformed
line into a value, keeps the well-formed lines of the same payload.

The prometheus-bad-input files (../shared/fixtures/prometheus-bad-input, from prometheus/common) use
metric names the collector does not read, so each one is also rewritten here: every sample line gets the
name `container_cpu_usage_seconds_total` and the labels of a pod cgroup (pod `bad-L<line number>`), so
that what the line would become is visible in the result. Expected values per line are written by hand
from the files (quoted in comments) and from the reference parser's verdict listed in SOURCES.md.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from fargate_insights.cadvisor import Extraction, Sample, extract

BAD_DIR = "prometheus-bad-input"
CPU = "container_cpu_usage_seconds_total"
INF = math.inf

UID_A = "aaaaaaaa-0000-4000-8000-000000000001"
UID_B = "aaaaaaaa-0000-4000-8000-000000000002"
SANDBOX_A = f"/kubepods/burstable/pod{UID_A}/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _pod_row(family: str, uid: str, pod: str, value: str, extra: str = "") -> str:
    return (
        f'{family}{{container="",{extra}id="/kubepods/burstable/pod{uid}",image="",name="",'
        f'namespace="ns",pod="{pod}"}} {value}\n'
    )


# A small valid payload around the bad text: pod A before it, pod B after it.
HEAD = (
    "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n"
    "# TYPE container_cpu_usage_seconds_total counter\n"
    + _pod_row(CPU, UID_A, "pod-a", "12.5 1700000000000", 'cpu="total",')
    + _pod_row("container_memory_working_set_bytes", UID_A, "pod-a", "1048576 1700000000000")
    + _pod_row("container_spec_cpu_period", UID_A, "pod-a", "100000")
    + _pod_row("container_spec_cpu_quota", UID_A, "pod-a", "50000")
    + _pod_row("container_spec_memory_limit_bytes", UID_A, "pod-a", "2097152")
    + f'container_network_receive_bytes_total{{container="",id="{SANDBOX_A}",image="pause:3.9",interface="eth0",'
    'name="x",namespace="ns",pod="pod-a"} 1000 1700000000000\n'
    + f'container_network_transmit_bytes_total{{container="",id="{SANDBOX_A}",image="pause:3.9",interface="eth0",'
    'name="x",namespace="ns",pod="pod-a"} 2000 1700000000000\n'
)
TAIL = _pod_row(CPU, UID_B, "pod-b", "3.25 1700000000001", 'cpu="total",') + _pod_row(
    "container_memory_working_set_bytes", UID_B, "pod-b", "4096 1700000000001"
)


def _assert_good_pods_intact(result: Extraction, *, tail: bool = True) -> None:
    a = result.pods[UID_A]
    assert (a.namespace, a.pod) == ("ns", "pod-a")
    assert a.cpu_usage_seconds == Sample(12.5, 1700000000000)
    assert a.memory_working_set == Sample(1048576.0, 1700000000000)
    assert (a.cpu_period, a.cpu_quota, a.memory_limit) == (100000.0, 50000.0, 2097152.0)
    assert a.network_rx == {(SANDBOX_A, "eth0"): Sample(1000.0, 1700000000000)}
    assert a.network_tx == {(SANDBOX_A, "eth0"): Sample(2000.0, 1700000000000)}
    if tail:
        b = result.pods[UID_B]
        assert (b.namespace, b.pod) == ("ns", "pod-b")
        assert b.cpu_usage_seconds == Sample(3.25, 1700000000001)
        assert b.memory_working_set == Sample(4096.0, 1700000000001)


def test_valid_frame_alone() -> None:
    result = extract((HEAD + TAIL).encode())
    assert set(result.pods) == {UID_A, UID_B}
    _assert_good_pods_intact(result)


# ---------------------------------------------------------------- rewriting the bad-input files


def _bad_uid(line_no: int) -> str:
    return f"bbbbbbbb-0000-4000-8000-{line_no:012d}"


def _bad_labels(line_no: int) -> str:
    return (
        f'container="",cpu="total",id="/kubepods/burstable/pod{_bad_uid(line_no)}",image="",'
        f'namespace="bad",pod="bad-L{line_no}"'
    )


_HELP_TYPE = re.compile(r"^(\s*#\s*(?:HELP|TYPE)\s+)([a-zA-Z_:][a-zA-Z0-9_:]*)")
_NAME_AT_START = re.compile(r"^([ \t]*)(@?)([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$", re.DOTALL)
_BRACE = re.compile(r"^([ \t]*)\{(.*)$", re.DOTALL)


def _rewrite_line(line: str, line_no: int) -> str:
    """Same line, with the metric name replaced by CPU and pod-cgroup labels put in front of its labels."""
    if line.lstrip(" \t").startswith("#"):
        return _HELP_TYPE.sub(lambda m: m.group(1) + CPU, line)
    m = _NAME_AT_START.match(line)
    if not m:
        return line
    ws, at, _name, rest = m.groups()
    brace = _BRACE.match(rest)
    if brace:
        return f"{ws}{at}{CPU}{brace.group(1)}{{{_bad_labels(line_no)},{brace.group(2)}"
    if rest[:1] in (" ", "\t"):
        return f"{ws}{at}{CPU}{{{_bad_labels(line_no)}}}{rest}"
    return line  # e.g. the second half of a label value broken by a raw newline


def _rewrite(text: str) -> str:
    return "\n".join(_rewrite_line(line, i) for i, line in enumerate(text.split("\n"), start=1))


# Per file: line number -> (value, timestamp) that the rewritten line must give. Lines not listed must
# give nothing. "Required": lines the reference parser accepts and that follow the strict line shape.
# "Whitespace": lines the reference parser accepts that use optional blanks/tabs between tokens; the
# frame test below only checks their value if present, the test after it requires them.
REQUIRED: dict[str, dict[int, tuple[float, int | None]]] = {
    # 2: "minimal_metric 1.234", 3: "another_metric -3e3 103948", 5: "no_labels{} 3"
    "prometheus-common__from_test_parse_1": {2: (1.234, None), 3: (-3000.0, 103948), 5: (3.0, None)},
    # 5: 'name{labelname="val1",basename="basevalue"} NaN'
    "prometheus-common__from_test_parse_2": {5: (math.nan, None)},
    "prometheus-common__from_test_parse_3": {
        3: (110.0, None),  # my_summary{n1="val1",quantile="0.5"} 110
        4: (-1.0, -2),  # decoy -1 -2
        5: (140.0, 1),  # my_summary{n1="val1",quantile="0.9"} 140 1
        6: (42.0, None),  # my_summary_count{n1="val1"} 42
        8: (4711.0, 2),  # my_summary_sum{n1="val1"} 4711 2
        9: (2001.0, None),  # fake_sum{n1="val1"} 2001
        11: (20.0, None),  # another_summary_count{n2="val2",n1="val1"} 20
        12: (5.0, 5),  # my_summary_count{n2="val2",n1="val1"} 5 5
        13: (-1.2, None),  # another_summary{n1="val1",n2="val2",quantile=".3"} -1.2
        14: (8.0, 15),  # my_summary_sum{n1="val2"} 08 15
    },
    # "bla 3.14" with no final newline: complete once the frame puts a newline after it
    "prometheus-common__from_test_parse_error_0": {1: (3.14, None)},
    "prometheus-common__from_test_parse_error_1": {},  # metric{label="\t"} 3.14 : invalid escape
    "prometheus-common__from_test_parse_error_10": {},  # metric{label="bla"} 3.14 2 3 : extra token
    "prometheus-common__from_test_parse_error_11": {},  # metric{label="bla"} blubb
    "prometheus-common__from_test_parse_error_12": {},  # duplicate HELP, no samples
    "prometheus-common__from_test_parse_error_13": {},  # duplicate TYPE, no samples
    # "metric 4.12" then a TYPE line: the payload is invalid for Go, the sample line itself is well-formed
    "prometheus-common__from_test_parse_error_14": {2: (4.12, None)},
    "prometheus-common__from_test_parse_error_17": {},  # @invalidmetric{label="bla"} 3.14 2
    "prometheus-common__from_test_parse_error_2": {},  # raw newline inside a label value
    "prometheus-common__from_test_parse_error_4": {},  # metric{__name__="bla"} 3.14
    "prometheus-common__from_test_parse_error_6": {},  # metric{label=bla} 3.14
    "prometheus-common__from_test_parse_error_9": {},  # metric{label="bla"} 3.14 2.72 : float timestamp
}
WHITESPACE: dict[str, dict[int, tuple[float, int | None]]] = {
    "prometheus-common__from_test_parse_2": {
        6: (0.23, 1234567890),  # name {labelname="val2",basename="base\"v\\al\nue"} 0.23 1234567890
        11: (INF, 54321),  # name2{labelname="val2"\t,basename   =   "basevalue2"\t\t} +Inf 54321
        12: (-INF, None),  # name2{ labelname = "val1" , }-Inf
    },
    "prometheus-common__from_test_parse_3": {
        15: (4711.0, None),  # my_summary{n1="val3", quantile="0.2"} 4711
        16: (math.nan, None),  # '  my_summary{n1="val1",n2="val2",quantile="-12.34",} NaN'
    },
}


def _same(a: tuple[float, int | None], b: tuple[float, int | None]) -> bool:
    if math.isnan(a[0]) or math.isnan(b[0]):
        return math.isnan(a[0]) and math.isnan(b[0]) and a[1] == b[1]
    return a == b


def test_every_bad_input_file_is_listed(shared_fixtures: Path) -> None:
    assert {p.name for p in (shared_fixtures / BAD_DIR).iterdir()} == set(REQUIRED)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_raw_file_never_raises_and_gives_no_pod(shared_fixtures: Path, name: str) -> None:
    raw = (shared_fixtures / BAD_DIR / name).read_bytes()
    assert extract(raw).pods == {}
    # and embedded in a valid payload it disturbs nothing
    sep = b"" if raw.endswith(b"\n") else b"\n"
    result = extract(HEAD.encode() + raw + sep + TAIL.encode())
    assert set(result.pods) == {UID_A, UID_B}
    _assert_good_pods_intact(result)


def _frame(text: str, where: str) -> tuple[str, bool]:
    """The text placed in the valid frame; returns the payload and whether its last line is complete."""
    sep = "" if text.endswith("\n") else "\n"
    if where == "start":
        return text + sep + HEAD + TAIL, True
    if where == "middle":
        return HEAD + text + sep + TAIL, True
    return HEAD + TAIL + text, text.endswith("\n")


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_rewritten_file_malformed_lines_give_no_value(shared_fixtures: Path, name: str, where: str) -> None:
    text = (shared_fixtures / BAD_DIR / name).read_text()
    rewritten = _rewrite(text)
    assert rewritten.count(CPU) >= len(REQUIRED[name])  # the rewrite did something
    payload, last_complete = _frame(rewritten, where)
    result = extract(payload.encode())

    _assert_good_pods_intact(result)
    required = dict(REQUIRED[name])
    optional = dict(WHITESPACE.get(name, {}))
    last_line = len(text.split("\n"))
    if not last_complete:  # a line without its newline is never used, even if it looks complete
        required.pop(last_line, None)
        optional.pop(last_line, None)

    bad_pods = {uid: p for uid, p in result.pods.items() if uid not in (UID_A, UID_B)}
    for line_no, want in required.items():
        p = bad_pods.get(_bad_uid(line_no))
        assert p is not None, f"well-formed line {line_no} dropped"
        assert p.pod == f"bad-L{line_no}"
        got = p.cpu_usage_seconds
        assert got is not None and _same((got.value, got.timestamp_ms), want), (line_no, got, want)
    allowed = {_bad_uid(n) for n in (*required, *optional)}
    assert set(bad_pods) <= allowed, f"malformed lines became pods: {set(bad_pods) - allowed}"
    for line_no, want in optional.items():
        p = bad_pods.get(_bad_uid(line_no))
        if p is not None and p.cpu_usage_seconds is not None:
            s = p.cpu_usage_seconds
            assert _same((s.value, s.timestamp_ms), want)


def test_rewrite_helper_itself() -> None:
    assert _rewrite_line("minimal_metric 1.234", 2) == f"{CPU}{{{_bad_labels(2)}}} 1.234"
    assert (
        _rewrite_line('metric{label="bla"} 3.14 2.72', 1)
        == f'{CPU}{{{_bad_labels(1)},label="bla"}} 3.14 2.72'
    )
    assert _rewrite_line("no_labels{} 3", 5) == f"{CPU}{{{_bad_labels(5)},}} 3"
    assert _rewrite_line('line"} 3.14', 3) == 'line"} 3.14'
    assert _rewrite_line("# HELP metric one", 2) == f"# HELP {CPU} one"
    assert _rewrite_line('@invalidmetric{label="bla"} 3.14 2', 1).startswith(f"@{CPU}{{")


@pytest.mark.parametrize(
    ("name", "line_no"),
    [(name, n) for name, lines in sorted(WHITESPACE.items()) for n in sorted(lines)],
)
def test_well_formed_lines_with_optional_whitespace_are_kept(
    shared_fixtures: Path, name: str, line_no: int
) -> None:
    text = (shared_fixtures / BAD_DIR / name).read_text()
    result = extract((HEAD + _rewrite(text) + "\n" + TAIL).encode())
    p = result.pods.get(_bad_uid(line_no))
    assert p is not None and p.cpu_usage_seconds is not None
    assert _same((p.cpu_usage_seconds.value, p.cpu_usage_seconds.timestamp_ms), WHITESPACE[name][line_no])


# ------------------------------------------------------------------------- hand-written cases

UID_X = "cccccccc-0000-4000-8000-000000000009"
ID_X = f"/kubepods/besteffort/pod{UID_X}"


def _x(value: str, labels: str = "", family: str = CPU, pod: str = "x", namespace: str = "ns") -> str:
    return (
        f'{family}{{container="",cpu="total",id="{ID_X}",image="",{labels}namespace="{namespace}",pod="{pod}"}} '
        f"{value}\n"
    )


def _only(payload: str) -> Extraction:
    result = extract((HEAD + payload + TAIL).encode())
    _assert_good_pods_intact(result)
    return result


def test_nan_and_infinities_are_read_as_themselves_never_as_numbers() -> None:
    result = _only(
        _x("NaN 1700000000000")
        + _x("+Inf", family="container_spec_memory_limit_bytes")
        + _x("-Inf 1700000000000", family="container_memory_working_set_bytes")
    )
    p = result.pods.get(UID_X)
    assert p is not None
    assert p.cpu_usage_seconds is None or (
        math.isnan(p.cpu_usage_seconds.value) and p.cpu_usage_seconds.timestamp_ms == 1700000000000
    )
    assert p.memory_limit is None or p.memory_limit == INF
    assert p.memory_working_set is None or p.memory_working_set == Sample(-INF, 1700000000000)


def test_escaped_and_unicode_label_values_round_trip() -> None:
    # label text: pod="we\"ird\\na\nme-ü", namespace="ns-日本\\x"
    pod_raw = 'we\\"ird\\\\na\\nme-ü'
    ns_raw = "ns-日本\\\\x"
    result = _only(_x("7.5 1700000000000", pod=pod_raw, namespace=ns_raw))
    p = result.pods[UID_X]
    assert p.pod == 'we"ird\\na\nme-ü'
    assert p.namespace == "ns-日本\\x"
    assert p.cpu_usage_seconds == Sample(7.5, 1700000000000)


@pytest.mark.parametrize(
    "line",
    [
        # duplicate label name
        f'{CPU}{{container="",container="",cpu="total",id="{ID_X}",image="",namespace="ns",pod="x"}} 1.5\n',
        f'{CPU}{{container="",cpu="total",id="{ID_X}",image="",namespace="ns",pod="x",pod="y"}} 1.5\n',
        # __name__ used as a label
        f'{CPU}{{__name__="{CPU}",container="",cpu="total",id="{ID_X}",image="",namespace="ns",pod="x"}} 1.5\n',
        # float timestamp
        _x("1.5 1700000000000.5"),
        # extra tokens
        _x("1.5 1700000000000 7"),
        _x("1.5 1700000000000 # comment"),
        # value not a number / hex / underscores (Python's float() would take the last one)
        _x("0x10"),
        _x("1_000"),
        _x("one"),
        # invalid escape, unterminated value, unquoted value
        _x("1.5", labels='extra="\\t",'),
        f'{CPU}{{container="",cpu="total",id="{ID_X}",image="",namespace="ns",pod="x}} 1.5\n',
        f'{CPU}{{container="",cpu="total",id="{ID_X}",image="",namespace=ns,pod="x"}} 1.5\n',
        # missing value (two blanks or a tab before the value are fine: see the whitespace tests)
        _x(""),
        # timestamp beyond int64
        _x("1.5 99999999999999999999"),
        _x("1.5 9223372036854775808"),
    ],
)
def test_malformed_line_gives_no_value(line: str) -> None:
    result = _only(line)
    p = result.pods.get(UID_X)
    assert p is None or p.cpu_usage_seconds is None, p


def test_label_value_containing_pod_empty_text_does_not_hide_the_row() -> None:
    # name="x,pod=\"\"" : the text pod="" inside an escaped label value
    result = _only(_x("2.5 1700000000000", labels='zname="a,pod=\\"\\"",'))
    assert result.pods[UID_X].cpu_usage_seconds == Sample(2.5, 1700000000000)
    result = _only(_x("2.5 1700000000000", labels='zname="{pod=\\"\\"}",zcontainer="x,container=\\"\\"",'))
    assert result.pods[UID_X].cpu_usage_seconds == Sample(2.5, 1700000000000)


def test_duplicate_series_with_different_values_gives_neither() -> None:
    result = _only(_x("1.5 1700000000000") + _x("2.5 1700000000000"))
    p = result.pods.get(UID_X)
    assert p is None or p.cpu_usage_seconds is None
    # the same for a pod-cgroup gauge and for a sandbox network counter
    result = _only(
        _x("100", family="container_spec_memory_limit_bytes")
        + _x("200", family="container_spec_memory_limit_bytes")
    )
    p = result.pods.get(UID_X)
    assert p is None or p.memory_limit is None
    rx = (
        f'container_network_receive_bytes_total{{container="",id="{SANDBOX_A}",image="pause:3.9",interface="eth0",'
        'name="x",namespace="ns",pod="pod-a"} 5555 1700000000000\n'
    )
    result = extract((HEAD + rx + TAIL).encode())
    assert result.pods[UID_A].network_rx == {}  # neither 1000 nor 5555
    assert result.pods[UID_A].cpu_usage_seconds == Sample(12.5, 1700000000000)  # other series unaffected


def test_duplicate_series_with_equal_values_is_kept() -> None:
    result = _only(_x("1.5 1700000000000") + _x("1.5 1700000000000"))
    assert result.pods[UID_X].cpu_usage_seconds == Sample(1.5, 1700000000000)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\n",
        b"\n\n\n",
        _x("1.5 1700000000000").rstrip("\n").encode(),  # no newline at all
        bytes(range(256)) * 4,
        b"\xff\xfe\x00" * 100 + b"\n",
        (CPU + "{").encode() * 50,
        b"\n" + (CPU + '{pod="\xff"').encode() * 30 + b"\n",
    ],
)
def test_degenerate_payloads(payload: bytes) -> None:
    assert extract(payload).pods == {}


def test_invalid_utf8_in_label_value_gives_no_value() -> None:
    line = _x("1.5", labels='zz="\udcff",').encode("utf-8", "surrogateescape")
    result = extract(HEAD.encode() + line + TAIL.encode())
    _assert_good_pods_intact(result)
    p = result.pods.get(UID_X)
    assert p is None or p.cpu_usage_seconds is None


# ------------------------------------------------------------ optional blanks and tabs, CRLF
# What the reference parser (Go, prometheus/common expfmt/text_parse.go) allows: blanks and tabs at
# the start of the line, before '{', after '{' and ',', around '=', before ',' and '}', any number (or
# none) before the value, one or more before the timestamp. Nothing after the last token: not a blank,
# not a CR. Only ' ' and '\t' are blanks. prometheus_client's parser is laxer (it strips each line, so
# it also takes CRLF and trailing blanks); it is used below only to confirm the accepted lines.

_X_LABELS = (
    ("container", ""),
    ("cpu", "total"),
    ("id", ID_X),
    ("image", ""),
    ("namespace", "ns"),
    ("pod", "x"),
)


def _ws_line(
    *,
    lead: str = "",
    before_brace: str = "",
    after_brace: str = "",
    eq: tuple[str, str] = ("", ""),
    comma: tuple[str, str] = ("", ""),
    trailing_comma: str = "",
    before_close: str = "",
    before_value: str = " ",
    value: str = "1.5",
    before_ts: str = " ",
    ts: str | None = "1700000000000",
    family: str = CPU,
    labels: tuple[tuple[str, str], ...] = _X_LABELS,
    end: str = "\n",
) -> str:
    pairs = (f'{name}{eq[0]}={eq[1]}"{val}"' for name, val in labels)
    label_set = f"{comma[0]},{comma[1]}".join(pairs)
    tail = "" if ts is None else f"{before_ts}{ts}"
    return (
        f"{lead}{family}{before_brace}{{{after_brace}{label_set}{trailing_comma}{before_close}}}"
        f"{before_value}{value}{tail}{end}"
    )


ACCEPTED_WHITESPACE = {
    "blank before {": _ws_line(before_brace=" "),
    "tab before {": _ws_line(before_brace="\t"),
    "blanks and tabs before {": _ws_line(before_brace=" \t "),
    "leading blanks": _ws_line(lead="   "),
    "leading tab": _ws_line(lead="\t"),
    "blank after { and before }": _ws_line(after_brace=" ", before_close=" "),
    "blanks around =": _ws_line(eq=(" ", " ")),
    "tabs around =": _ws_line(eq=("\t", "\t\t")),
    "blank only after =": _ws_line(eq=("", " ")),
    "blanks around ,": _ws_line(comma=(" ", " ")),
    "tab after ,": _ws_line(comma=("", "\t")),
    "trailing comma": _ws_line(trailing_comma=","),
    "trailing comma with blanks": _ws_line(trailing_comma=" , ", before_close="\t"),
    "no blank before the value": _ws_line(before_value=""),
    "no blank before the value, no timestamp": _ws_line(before_value="", ts=None),
    "two blanks before the value": _ws_line(before_value="  "),
    "tab before the value": _ws_line(before_value="\t"),
    "tab before the timestamp": _ws_line(before_ts="\t"),
    "blanks and tabs before the timestamp": _ws_line(before_ts=" \t  "),
    "everything at once": _ws_line(
        lead=" \t",
        before_brace="\t",
        after_brace=" ",
        eq=(" ", "\t"),
        comma=("\t", " "),
        trailing_comma=" ,",
        before_close=" ",
        before_value="",
        before_ts="\t ",
    ),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_WHITESPACE))
def test_optional_whitespace_is_read_like_the_reference_parser(case: str) -> None:
    line = ACCEPTED_WHITESPACE[case]
    result = _only(line)
    p = result.pods.get(UID_X)
    assert p is not None, case
    assert (p.namespace, p.pod) == ("ns", "x")
    want_ts = None if "no timestamp" in case else 1700000000000
    assert p.cpu_usage_seconds == Sample(1.5, want_ts)
    assert result.malformed_lines == 0
    # the line is well-formed for prometheus_client too, with the same labels and value
    (family,) = text_string_to_metric_families(line)
    (sample,) = family.samples
    assert (sample.labels, sample.value) == (dict(_X_LABELS), 1.5)


def test_blanks_in_labels_do_not_defeat_the_row_filters() -> None:
    """The substring shortcuts (`,container=""`) cannot see `container = ""`: such rows are parsed."""
    # a pod-cgroup gauge with blanks around '=': kept
    quota = _ws_line(family="container_spec_cpu_quota", value="25000", ts=None, eq=(" ", " "))
    # an app container with blanks: still not the pod's total
    app = (("container", "app"), *_X_LABELS[1:3], ("image", "nginx"), *_X_LABELS[4:])
    app_line = _ws_line(family="container_memory_working_set_bytes", value="999", eq=(" ", ""), labels=app)
    # sandbox network rows with blanks, containerd (container="", pause image) and Docker (container="POD")
    sandbox_id = f"{ID_X}/" + "ab" * 32
    net = (
        ("container", ""),
        ("id", sandbox_id),
        ("image", "pause:3.9"),
        ("interface", "eth0"),
        ("namespace", "ns"),
        ("pod", "x"),
    )
    rx = _ws_line(family="container_network_receive_bytes_total", value="700", comma=(" ", " "), labels=net)
    docker = (("container", "POD"), *net[1:])
    tx = _ws_line(family="container_network_transmit_bytes_total", value="800", eq=("\t", ""), labels=docker)
    result = _only(quota + app_line + rx + tx)
    p = result.pods[UID_X]
    assert p.cpu_quota == 25000.0
    assert p.memory_working_set is None
    assert p.network_rx == {(sandbox_id, "eth0"): Sample(700.0, 1700000000000)}
    assert p.network_tx == {(sandbox_id, "eth0"): Sample(800.0, 1700000000000)}
    assert result.malformed_lines == 0


def test_the_first_label_shortcut_rules_out_only_what_the_text_settles() -> None:
    """`container` first (the kubelet's order) settles a line unparsed only when its value is plain."""
    sandbox_id = f"{ID_X}/" + "cd" * 32
    net = (("container", "POD"), ("id", sandbox_id), ("image", ""), ("interface", "eth0"), *_X_LABELS[4:])
    lines = (
        # container="POD" with the name led by blanks: a Docker sandbox row, kept
        _ws_line(family="container_network_receive_bytes_total", lead=" \t", value="700", labels=net)
        # container="POD\"x" and "PODx" are not "POD": not sandbox rows
        + _ws_line(
            family="container_network_transmit_bytes_total",
            value="1",
            labels=(("container", 'POD\\"x'), *net[1:]),
        )
        + _ws_line(
            family="container_network_transmit_bytes_total",
            value="2",
            labels=(("container", "PODx"), *net[1:]),
        )
        # container="" first and the image written with a blank after its comma: parsed, kept
        + _ws_line(
            family="container_spec_memory_limit_bytes",
            value="4096",
            ts=None,
            comma=("", " "),
            labels=(_X_LABELS[0], *_X_LABELS[2:]),
        )
        # container="" first and a pause image: not the pod's total
        + _ws_line(
            family="container_spec_cpu_quota",
            value="9",
            ts=None,
            labels=(_X_LABELS[0], _X_LABELS[2], ("image", "pause:3.9"), *_X_LABELS[4:]),
        )
        # an escaped quote as the container value's first character: not empty, not the pod's total
        + _ws_line(
            family="container_memory_working_set_bytes",
            value="5",
            labels=(("container", '\\"'), *_X_LABELS[1:]),
        )
    )
    result = _only(lines)
    p = result.pods[UID_X]
    assert p.network_rx == {(sandbox_id, "eth0"): Sample(700.0, 1700000000000)}
    assert p.network_tx == {}
    assert p.memory_limit == 4096.0
    assert p.cpu_quota is None
    assert p.memory_working_set is None
    assert result.malformed_lines == 0


def test_escaped_values_and_cr_inside_a_value_with_blanks_around_them() -> None:
    labels = (*_X_LABELS[:4], ("namespace", 'n\\"s\\\\'), ("pod", "x\ry"))
    result = _only(_ws_line(eq=(" ", " "), comma=(" ", ""), labels=labels))
    p = result.pods[UID_X]
    assert (p.namespace, p.pod) == ('n"s\\', "x\ry")
    assert p.cpu_usage_seconds == Sample(1.5, 1700000000000)


@pytest.mark.parametrize(
    ("ts", "want"),
    [
        ("+1700000000000", 1700000000000),
        ("0000000000001700000000000", 1700000000000),
        ("0" * 5000 + "1700000000000", 1700000000000),  # beyond int()'s 4300-digit limit
        ("-0", 0),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_timestamps_go_parseint_accepts(ts: str, want: int) -> None:
    p = _only(_ws_line(ts=ts)).pods[UID_X]
    assert p.cpu_usage_seconds == Sample(1.5, want)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("inf", INF),
        ("+Infinity", INF),
        ("-INF", -INF),
        ("iNfInItY", INF),
        ("nan", math.nan),
        ("NAN", math.nan),
    ],
)
def test_special_values_go_parsefloat_accepts(value: str, want: float) -> None:
    got = _only(_ws_line(value=value)).pods[UID_X].cpu_usage_seconds
    assert got is not None and _same((got.value, got.timestamp_ms), (want, 1700000000000))


@pytest.mark.parametrize(
    "line",
    [
        # something after the last token: the Go parser wants the newline right there
        _ws_line(ts=None, value="1.5 "),
        _ws_line(ts=None, value="1.5\t"),
        _ws_line(ts="1700000000000 "),
        _ws_line(ts="1700000000000\t"),
        # CR before the newline (a CRLF line), or used as a blank
        _ws_line(end="\r\n"),
        _ws_line(ts=None, end="\r\n"),
        _ws_line(before_value="\r"),
        _ws_line(before_brace="\r"),
        _ws_line(eq=("\r", "")),
        # other whitespace is not a blank
        _ws_line(before_value="\x0b"),
        _ws_line(before_value="\x0c"),
        _ws_line(before_value="\u00a0"),
        _ws_line(lead="\x0c"),
        _ws_line(comma=("\u00a0", "")),
        # commas: leading, doubled, or a blank instead of one
        _ws_line(after_brace=","),
        _ws_line(after_brace=" , "),
        _ws_line(comma=(",", "")),
        _ws_line(comma=(" ,", " ")),
        _ws_line(trailing_comma=",,"),
        _ws_line(comma=(" ", "")).replace(" ,", "  "),
        # a blank inside a token
        _ws_line(labels=(("con tainer", ""), *_X_LABELS[1:])),
        _ws_line(value="1 .5", ts=None),
        _ws_line(value="- 1.5"),
        _ws_line(ts="- 1700000000000"),
        _ws_line(ts="+-1700000000000"),
        # the usual checks still apply on the tolerant path
        _ws_line(eq=(" ", " "), labels=(("__name__", CPU), *_X_LABELS)),
        _ws_line(comma=(" ", " "), labels=(*_X_LABELS, ("pod", "y"))),
        _ws_line(eq=(" ", " "), labels=(*_X_LABELS[:5], ("pod", "x\\t"))),
        _ws_line(before_value="", value="0x10"),
        _ws_line(before_value="\t", ts="1700000000000.5"),
        _ws_line(before_brace=" ", ts="9223372036854775808"),
        _ws_line(before_brace=" ", ts="1" * 5000),
        # Go's ParseFloat: no signed NaN, no overflow to infinity
        _ws_line(value="+NaN"),
        _ws_line(value="-nan"),
        _ws_line(value="1e999"),
        _ws_line(before_value="", value="-1e999"),
    ],
)
def test_malformed_whitespace_and_value_forms_give_no_value(line: str) -> None:
    result = _only(line)
    p = result.pods.get(UID_X)
    assert p is None or p.cpu_usage_seconds is None, (line, p)


def test_crlf_payload_gives_no_value_and_counts_every_pod_row() -> None:
    """A CRLF body is malformed for the Go parser (the CR ends up in the value or timestamp token),
    though prometheus_client, which strips lines, takes it. The kubelet never writes one, so a CRLF
    body means something rewrote it: say so through malformed_lines rather than guess."""
    payload = (HEAD + TAIL).replace("\n", "\r\n")
    result = extract(payload.encode())
    assert result.pods == {}
    assert result.malformed_lines == 9  # the 7 rows of pod A and the 2 of pod B
    assert sum(len(f.samples) for f in text_string_to_metric_families(payload)) == 9


def test_one_crlf_line_loses_only_itself() -> None:
    result = _only(
        _x("1.5 1700000000000").replace("\n", "\r\n") + _x("64", family="container_spec_cpu_quota")
    )
    p = result.pods[UID_X]
    assert p.cpu_usage_seconds is None
    assert p.cpu_quota == 64.0
    assert result.malformed_lines == 1


_REAL_LINE = re.compile(rb"([a-z_]+)\{([^}\n]*)\} ([^ \n]+)(?: ([0-9]+))?")
_REAL_LABEL = re.compile(rb'([a-z_]+)="([^"\\\n]*)"')


def _respace(
    payload: bytes, lead: bytes, brace: bytes, eq: bytes, comma: bytes, close: bytes, value: bytes
) -> bytes:
    """Every wanted sample line written again with the given optional blanks between its tokens."""
    heads = tuple(f"{f}{{".encode() for f in _WANTED)
    out = []
    for line in payload.split(b"\n"):
        m = _REAL_LINE.fullmatch(line) if line.startswith(heads) else None
        if m is not None:
            name, labels, val, ts = m.groups()
            pairs = [n + eq + b'"' + v + b'"' for n, v in _REAL_LABEL.findall(labels)]
            assert b",".join(n + b'="' + v + b'"' for n, v in _REAL_LABEL.findall(labels)) == labels
            line = lead + name + brace + b"{" + comma.join(pairs) + close + b"}" + value + val
            line += b"" if ts is None else b"\t " + ts
        out.append(line)
    return b"\n".join(out)


@pytest.mark.parametrize(
    "spacing",
    [
        (b"", b" ", b" = ", b" , ", b" ", b" "),
        (b"\t ", b"\t", b"\t=", b",\t", b" ,", b""),
        (b"  ", b"", b"= ", b" ,", b"", b"\t\t"),
    ],
)
def test_real_payload_respaced_gives_the_same_pods(shared_fixtures: Path, spacing: tuple[bytes, ...]) -> None:
    """A real payload with optional blanks added everywhere (including where the row filters look)
    reads exactly like the original."""
    original = (shared_fixtures / "cadvisor/kubelet-1.28-containerd.txt").read_bytes()
    respaced = _respace(original, *spacing)
    assert respaced != original and respaced.count(b"\n") == original.count(b"\n")
    want, got = extract(original), extract(respaced)
    assert len(want.pods) > 5
    assert got.pods == want.pods
    assert got.malformed_lines == want.malformed_lines == 0


# ------------------------------------------------------------------------------- property tests

_WANTED = (
    CPU,
    "container_spec_cpu_quota",
    "container_spec_cpu_period",
    "container_memory_working_set_bytes",
    "container_spec_memory_limit_bytes",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_start_time_seconds",
)
VALID = (HEAD + _x("0.5 1700000000000") + _x("123", family="container_start_time_seconds") + TAIL).encode()


def _key(value: float) -> float | str:
    return "nan" if math.isnan(value) else value


_ORACLE_HEAD = re.compile(rb"[ \t]*(?:" + b"|".join(f.encode() for f in _WANTED) + rb")[ \t]*\{")


def _literal_values(payload: bytes) -> tuple[set[tuple[float | str, int | None]], set[float | str]]:
    """(value, timestamp) pairs and bare values written at the end of intact lines of a wanted family.

    Deliberately looser than the text format (any blanks/tabs around the tokens after the last '}'):
    it bounds what the extractor may return, it does not decide what is well-formed.
    """
    samples: set[tuple[float | str, int | None]] = set()
    values: set[float | str] = set()
    for line in payload.split(b"\n")[:-1]:  # the part after the last newline is not an intact line
        if not _ORACLE_HEAD.match(line) or b"}" not in line:
            continue
        tokens = [t for t in re.split(rb"[ \t]+", line.rsplit(b"}", 1)[1]) if t]
        if len(tokens) not in (1, 2):
            continue
        try:
            value = float(tokens[0])
            ts = int(tokens[1]) if len(tokens) == 2 else None
        except ValueError:
            continue
        samples.add((_key(value), ts))
        values.add(_key(value))
    return samples, values


def _check_values_are_literal(payload: bytes) -> None:
    result = extract(payload)
    samples, values = _literal_values(payload)
    for p in result.pods.values():
        for s in (p.cpu_usage_seconds, p.memory_working_set, *p.network_rx.values(), *p.network_tx.values()):
            if s is not None:
                assert (_key(s.value), s.timestamp_ms) in samples, s
        for v in (p.cpu_quota, p.cpu_period, p.memory_limit, p.start_time_seconds):
            if v is not None:
                assert _key(v) in values, v


def test_literal_values_helper() -> None:
    samples, values = _literal_values(VALID)
    assert (12.5, 1700000000000) in samples and 50000.0 in values and (0.5, 1700000000000) in samples
    _check_values_are_literal(VALID)


_FRAGMENTS = [
    b'"',
    b"\\",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b",",
    b" ",
    b"\t",
    b"=",
    b'pod=""',
    b'container=""',
    b"NaN",
    b"+Inf",
    b"e9",
    b"-",
    b".",
    b"\xff",
    b"\x00",
    b"#",
    b'a="b"',
    b"9" * 20,
    CPU.encode(),
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "dup_line", "swap_lines"]))
        pos = draw(st.integers(min_value=0, max_value=len(data)))
        if kind == "insert":
            chunk = draw(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(min_size=1, max_size=6)))
            data[pos:pos] = chunk
        elif kind == "delete":
            data[pos : pos + draw(st.integers(min_value=1, max_value=12))] = b""
        elif kind == "replace" and pos < len(data):
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "truncate":
            del data[pos:]
        elif kind in ("dup_line", "swap_lines"):
            lines = bytes(data).split(b"\n")
            if len(lines) > 1:
                i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
                j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
                if kind == "dup_line":
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\n".join(lines))
    return bytes(data)


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.binary(max_size=3000))
def test_property_random_bytes(payload: bytes) -> None:
    _check_values_are_literal(payload)


@_SETTINGS
@given(_mutated())
def test_property_mutated_valid_payload(payload: bytes) -> None:
    _check_values_are_literal(payload)


@_SETTINGS
@given(st.lists(st.sampled_from(VALID.split(b"\n")), max_size=30), st.binary(max_size=40))
def test_property_recombined_lines_with_garbage_tail(lines: list[bytes], tail: bytes) -> None:
    _check_values_are_literal(b"\n".join(lines) + b"\n" + tail)


@pytest.mark.parametrize(
    "labels",
    [
        'zz="a} 9 9",',  # a closing brace and numbers inside a label value
        'zz="ends with backslash \\\\",',  # value a\ : the quote after the escaped backslash closes it
        'zz="quote \\" } 8",',
        'zz="",',
    ],
)
def test_tricky_but_valid_label_values_keep_the_right_value(labels: str) -> None:
    result = _only(_x("1.5 1700000000000", labels=labels))
    assert result.pods[UID_X].cpu_usage_seconds == Sample(1.5, 1700000000000)


def test_an_absent_container_or_image_label_is_an_empty_one() -> None:
    """Prometheus' data model: `container=""` and no `container` label are the same series."""
    without_container = f'id="{ID_X}",image="",namespace="ns",pod="x"'
    without_image = f'container="",id="{ID_X}",namespace="ns",pod="x"'
    without_both = f'id="{ID_X}",namespace="ns",pod="x"'
    sandbox_id = f"{ID_X}/" + "cd" * 32
    lines = (
        f"container_memory_working_set_bytes{{{without_container}}} 7294976 1700000000000\n"
        f"container_spec_memory_limit_bytes{{{without_image}}} 8388608\n"
        f"container_spec_cpu_quota{{{without_both}}} 25000\n"
        # no container label and a pause image: the sandbox, whose interfaces are the pod's network
        f'container_network_receive_bytes_total{{id="{sandbox_id}",image="pause:3.9",interface="eth0",'
        'namespace="ns",pod="x"} 900 1700000000000\n'
        # an app container's row still names its container: not the pod's total
        f'container_spec_cpu_period{{container="app",id="{ID_X}",namespace="ns",pod="x"}} 1\n'
    )
    p = _only(lines).pods[UID_X]
    assert p.memory_working_set == Sample(7294976.0, 1700000000000)
    assert p.memory_limit == 8388608.0
    assert p.cpu_quota == 25000.0
    assert p.network_rx == {(sandbox_id, "eth0"): Sample(900.0, 1700000000000)}
    assert p.cpu_period is None


def test_a_malformed_network_line_leaves_no_partial_sum() -> None:
    """eth1's receive line is malformed: the pod's receive interfaces are unknown, its transmit ones not."""
    sandbox_id = f"{ID_X}/" + "cd" * 32

    def net(family: str, interface: str, value: str) -> str:
        return (
            f'container_network_{family}_bytes_total{{container="",id="{sandbox_id}",image="pause:3.9",'
            f'interface="{interface}",namespace="ns",pod="x"}} {value} 1700000000000\n'
        )

    result = _only(
        _x("1.5 1700000000000")
        + net("receive", "eth0", "100")
        + net("receive", "eth1", "1e999")  # out of float range: malformed, as for Go's ParseFloat
        + net("transmit", "eth0", "300")
        + net("transmit", "eth1", "400")
    )
    p = result.pods[UID_X]
    assert result.malformed_lines == 1
    assert p.network_rx == {}
    assert p.network_tx == {
        (sandbox_id, "eth0"): Sample(300.0, 1700000000000),
        (sandbox_id, "eth1"): Sample(400.0, 1700000000000),
    }
    assert p.cpu_usage_seconds == Sample(1.5, 1700000000000)


def test_a_network_line_whose_labels_cannot_be_read_makes_every_pods_sum_of_that_family_unsure() -> None:
    unreadable = 'container_network_receive_bytes_total{container="",id="/kubepods/x,interface="eth1"} 5\n'
    result = extract((HEAD + unreadable + TAIL).encode())
    a = result.pods[UID_A]
    assert result.malformed_lines == 1
    assert a.network_rx == {}  # it could have been pod A's second interface
    assert a.network_tx == {(SANDBOX_A, "eth0"): Sample(2000.0, 1700000000000)}
    assert a.cpu_usage_seconds == Sample(12.5, 1700000000000)


@pytest.mark.parametrize(
    ("labels", "kept"),
    [
        ('container="",foo="a,image=",id="{cgroup}",namespace="ns",pod="pod-a"', True),
        ('foo="a,container=",id="{cgroup}",namespace="ns",pod="pod-a"', True),
        ('foo="x{image=",container="",id="{cgroup}",namespace="ns",pod="pod-a"', True),
        ('container="",foo="a,image=",id="{cgroup}",image="app:1",namespace="ns",pod="pod-a"', False),
        ('foo="a,container=",container="app",id="{cgroup}",namespace="ns",pod="pod-a"', False),
    ],
    ids=["image-absent", "container-absent", "image-absent-brace", "image-present", "container-present"],
)
def test_a_value_ending_like_a_label_does_not_make_the_label_present(labels: str, kept: bool) -> None:
    """`,image="` in a line can be a value's end and its closing quote: only a genuine label rules a row out."""
    line = f"{CPU}{{{labels.replace('{cgroup}', f'/kubepods/burstable/pod{UID_A}')}}} 5 1700000000000\n"
    pod = extract(line.encode()).pods.get(UID_A)
    assert (pod is not None and pod.cpu_usage_seconds == Sample(5.0, 1700000000000)) is kept
