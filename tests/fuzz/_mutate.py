"""Mutations of valid small raw files and the property every parser must keep under them.

A ``Mutation`` is drawn by hypothesis and applied to the bytes of one raw file: a field replaced by a hostile
value (NaN, inf, 1e308, an id beyond int64, markup, non-ASCII digits...), a field inserted or removed, a line
dropped, repeated or blanked, invalid bytes, a very long line, CRLF, truncation, an empty file. JSON-lines and
Python-literal files also get value-level mutations (a key set to a hostile JSON value, or removed).

``run_parser`` is the property: the parse either returns tables or raises the project's ``DataError`` naming a
file of the raw directory (with a 1-based line inside the file, when it names one) and a bounded message; any
other exception, or a parse longer than ``PARSE_SECONDS``, fails the example.
"""

from __future__ import annotations

import ast
import gzip
import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tasks.common.errors import DataError
from tasks.datasets.base import CanonicalTables

PARSE_SECONDS = 20.0  # hard bound of one parse (hypothesis' deadline reports slow ones first)
MAX_MESSAGE = 2_000  # an error message never carries a whole field

BAD_VALUES = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e400",
    "-1e308",
    "-1",
    "0",
    "2.5",
    "3.5",
    "6",
    "99999999999999999999",
    "-9223372036854775809",
    "9223372036854775807",
    "1e18",
    "1e30",
    "",
    " ",
    "x",
    "٣",
    "１",
    "+5",
    "0x10",
    "1_000",
    '"',
    '"quoted, text"',
    "<b>bold</b>",
    '<span class="a-size-medium a-color-secondary"',
    "&amp;",
    "(1,2)",
    "(99999999999999999999,1)",
    "1|2",
    "::",
    "\t",
]
VALUES = st.one_of(
    st.sampled_from(BAD_VALUES),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
)
JSON_VALUES = st.one_of(
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 1e308, 10**30, 2**70, -1, 0, 2.5, "", " ", None, [], {}, True]
    ),
    st.sampled_from(["x", "<b>t</b>", '<span class="a-size-medium"', "&amp;", [["A", ["B"]]], "1e308", "nan"]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(max_size=6),
)
BAD_BYTES = [b"\xff\xfe", b"\xe9", b"\x00", b"\r", b"\xef\xbb\xbf", b"\xc3"]
LONG_SIZES = [5_000, 70_000, 1_100_000]


@dataclass(frozen=True)
class Mutation:
    kind: str
    file: int  # index into the family's mutable files (taken modulo their number)
    line: int = 0  # position, taken modulo the number of lines
    field: int = 0
    value: object = None


def mutations(kinds: tuple[str, ...] = ()) -> st.SearchStrategy[list[Mutation]]:
    """0 to 3 mutations; ``kinds`` adds value-level ones (``json``, ``literal``)."""
    pos = st.integers(min_value=0, max_value=10_000)
    one = st.one_of(
        st.builds(Mutation, st.just("replace_field"), pos, pos, pos, VALUES),
        st.builds(Mutation, st.just("insert_field"), pos, pos, pos, VALUES),
        st.builds(Mutation, st.just("remove_field"), pos, pos, pos),
        st.builds(Mutation, st.sampled_from(["drop_line", "dup_line", "blank_line", "swap_lines"]), pos, pos, pos),
        st.builds(Mutation, st.just("bytes"), pos, pos, pos, st.sampled_from(BAD_BYTES)),
        st.builds(Mutation, st.just("long_line"), pos, pos, st.sampled_from(LONG_SIZES), st.sampled_from("x1,\t:")),
        st.builds(Mutation, st.sampled_from(["crlf", "empty", "truncate", "no_final_newline"]), pos, pos),
        *(
            [st.builds(Mutation, st.sampled_from(["json_value", "json_drop_key"]), pos, pos, pos, JSON_VALUES)]
            if kinds
            else []
        ),
    )
    return st.lists(one, min_size=0, max_size=3)


def _fields(line: bytes, sep: bytes) -> list[bytes]:
    return line.split(sep) if sep else [line]


def _line_op(lines: list[bytes], m: Mutation, sep: bytes) -> list[bytes]:
    k = m.line % max(len(lines), 1)
    if not lines:
        return [str(m.value or "").encode()] if m.kind in ("replace_field", "insert_field") else lines
    fields = _fields(lines[k], sep)
    j = m.field % len(fields)
    value = str(m.value).encode("utf-8", errors="surrogatepass") if m.value is not None else b""
    if m.kind == "replace_field":
        fields[j] = value
    elif m.kind == "insert_field":
        fields.insert(j, value)
    elif m.kind == "remove_field" and len(fields) > 1:
        del fields[j]
    elif m.kind == "drop_line":
        return lines[:k] + lines[k + 1 :]
    elif m.kind == "dup_line":
        return lines[: k + 1] + lines[k:]
    elif m.kind == "blank_line":
        return [*lines[:k], b"", *lines[k:]]
    elif m.kind == "swap_lines":
        lines = list(lines)
        lines[0], lines[k] = lines[k], lines[0]
        return lines
    elif m.kind == "bytes":
        cut = m.field % (len(lines[k]) + 1)
        return [*lines[:k], lines[k][:cut] + bytes(m.value) + lines[k][cut:], *lines[k + 1 :]]  # type: ignore[arg-type]
    elif m.kind == "long_line":
        return [*lines[:k], str(m.value).encode() * int(m.field), *lines[k + 1 :]]
    return [*lines[:k], sep.join(fields), *lines[k + 1 :]]


def _value_op(lines: list[bytes], m: Mutation, style: str) -> list[bytes]:
    """Set (or drop) one key of a JSON / Python-literal line to a hostile value."""
    if not lines:
        return lines
    k = m.line % len(lines)
    try:
        obj = json.loads(lines[k]) if style == "json" else ast.literal_eval(lines[k].decode())
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return lines
    if not isinstance(obj, dict) or not obj:
        return lines
    key = sorted(obj)[m.field % len(obj)]
    if m.kind == "json_drop_key":
        del obj[key]
    else:
        obj[key] = m.value
    text = json.dumps(obj) if style == "json" else repr(obj)
    return [*lines[:k], text.encode("utf-8", errors="surrogatepass"), *lines[k + 1 :]]


def mutate(data: bytes, m: Mutation, sep: bytes, style: str = "") -> bytes:
    """Apply one mutation to a file's (decompressed) bytes; ``style``: "json" / "literal" lines, or ""."""
    if m.kind == "empty":
        return b""
    if m.kind == "truncate":
        return data[: m.line % (len(data) + 1)]
    if m.kind == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if m.kind == "no_final_newline":
        return data.rstrip(b"\r\n")
    final = data.endswith(b"\n")
    lines = data.split(b"\n")
    if final:
        lines = lines[:-1]
    if m.kind.startswith("json_"):
        if not style:
            return data
        lines = _value_op(lines, m, style)
    else:
        lines = _line_op(lines, m, sep)
    return b"\n".join(lines) + (b"\n" if final else b"")


@dataclass(frozen=True)
class RawFile:
    name: str
    sep: str
    gz: bool = False
    style: str = ""  # "json" | "literal" for value-level mutations


def apply(raw: Path, files: list[RawFile], muts: list[Mutation]) -> None:
    """Mutate the files of ``raw`` in place (gzip files are mutated decompressed and compressed again)."""
    for m in muts:
        f = files[m.file % len(files)]
        path = raw / f.name
        data = gzip.decompress(path.read_bytes()) if f.gz else path.read_bytes()
        data = mutate(data, m, f.sep.encode(), f.style)
        path.write_bytes(gzip.compress(data, compresslevel=1) if f.gz else data)


def text_lines(path: Path, gz: bool = False) -> list[str]:
    """Non-blank lines of a (possibly gzip) file, as the line readers see them."""
    data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    lines = data.decode("utf-8", errors="replace").split("\n")
    return [x for x in (line.removesuffix("\r") for line in lines) if x.strip()]


class ParseTimeout(Exception):
    """A parse ran past ``PARSE_SECONDS`` (a hang)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise ParseTimeout(f"parse still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_error(exc: DataError, raw: Path) -> None:
    """A ``DataError`` names a file of the raw directory (or the directory), a plausible line, a bounded message."""
    assert exc.file.startswith(str(raw)), f"error names no raw file: {exc}"
    assert len(str(exc)) <= MAX_MESSAGE, f"error message of {len(str(exc))} chars"
    if exc.line is not None:
        path = Path(exc.file)
        n = path.read_bytes().count(b"\n") + 1 if path.is_file() and not exc.file.endswith(".gz") else None
        assert exc.line >= 1 and (n is None or exc.line <= n), f"line {exc.line} outside the file: {exc}"


def run_parser(parse: Callable[[], CanonicalTables], raw: Path) -> CanonicalTables | None:
    """Tables, or None after a well-formed ``DataError``; anything else fails the example."""
    try:
        with time_limit(PARSE_SECONDS):
            return parse()
    except DataError as exc:
        check_error(exc, raw)
        return None
