"""The one way the project reads YAML that a user wrote (params.yaml, a custom dataset's mapping file).

PyYAML's ``safe_load`` refuses arbitrary objects but not the other classic attacks on a parser, so every user
YAML goes through ``load_user_yaml`` (or ``read_user_text`` + ``parse_user_yaml``), which refuses, with a
``DataError`` naming the file, the line, what was expected and what was found:

* a file larger than ``MAX_USER_YAML_BYTES`` (reading stops past the limit: even /dev/zero is refused at once);
* anchors and aliases (``&a`` / ``*a``), before anything is built from them: a few hundred bytes of nested
  aliases ("billion laughs") stand for 10^9 nodes, and any walk over the document (line numbers for error
  messages, a deep copy, a dump) would visit them all. Configuration files never need them: write values out;
* nesting deeper than ``MAX_USER_YAML_DEPTH`` (``[[[[...]]]]`` would otherwise overflow Python's recursion);
* anything the safe constructor cannot build (a syntax error, an unhashable key, an integer of more digits than
  Python converts, an impossible date), including the errors PyYAML raises as plain ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.common.errors import DataError

MAX_USER_YAML_BYTES = 1 << 20  # 1 MiB: a mapping or params file is a few KiB
MAX_USER_YAML_DEPTH = 64  # levels of nested mappings / sequences
WRITTEN_OUT = "every value written out (no &anchor or *alias)"
EXPECTED = f"a plain YAML document (no &anchors or *aliases, at most {MAX_USER_YAML_BYTES} bytes)"


class _Refused(yaml.YAMLError):
    """Raised inside the loader; ``parse_user_yaml`` turns it into a ``DataError``."""

    def __init__(self, problem: str, expected: str, found: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem, self.expected, self.found, self.mark = problem, expected, found, mark


class _UserLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses anchors, aliases and deep nesting while composing, i.e. before any node is
    shared or any object built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused("YAML aliases are not allowed", WRITTEN_OUT, f"*{event.anchor}", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused("YAML anchors are not allowed", WRITTEN_OUT, f"&{anchor}", event.start_mark)
        if self._depth >= MAX_USER_YAML_DEPTH:
            deeper = f"more than {MAX_USER_YAML_DEPTH} levels"
            raise _Refused("YAML nested too deeply", f"at most {MAX_USER_YAML_DEPTH} levels", deeper, event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_user_text(path: str | Path, max_bytes: int = MAX_USER_YAML_BYTES) -> str:
    """The UTF-8 text of ``path``, refused (``DataError``) when larger than ``max_bytes``, unreadable or not
    UTF-8. Reads at most ``max_bytes + 1`` bytes whatever the file claims to be."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise DataError(path, f"file unreadable: {exc}") from exc
    if len(data) > max_bytes:
        size = path.stat().st_size if path.is_file() else None
        found = f"{size} bytes" if size and size > max_bytes else f"more than {max_bytes} bytes"
        raise DataError(path, "file too large", expected=f"at most {max_bytes} bytes", found=found)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, "not valid utf-8") from exc


def compose_user_yaml(text: str, source: str | Path) -> yaml.Node | None:
    """The node tree of ``text`` (None for an empty document), with anchors, aliases and deep nesting refused.
    Aliases being refused, every node appears once, so walking the tree is linear in the text."""
    return _parse(text, source, construct=False)[1]


def parse_user_yaml(text: str, source: str | Path) -> tuple[Any, yaml.Node | None]:
    """The Python value of ``text`` (safe types only) and its node tree (for line numbers), composed once."""
    return _parse(text, source, construct=True)


def load_user_yaml(path: str | Path, max_bytes: int = MAX_USER_YAML_BYTES) -> Any:
    """Read and parse a user YAML file (see the module docstring for what is refused)."""
    return parse_user_yaml(read_user_text(path, max_bytes), path)[0]


def _parse(text: str, source: str | Path, construct: bool) -> tuple[Any, yaml.Node | None]:
    loader = _UserLoader(text)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if construct and node is not None else None
        return value, node
    except _Refused as exc:
        raise DataError(source, exc.problem, line=_line(exc.mark), expected=exc.expected, found=exc.found) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(source, f"not valid YAML: {exc}", line=_line(mark)) from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # int("9" * 5000), date 2024-13-45, ...
        raise DataError(source, f"not valid YAML: a value cannot be read: {exc}") from exc
    finally:
        loader.dispose()


def _line(mark: yaml.Mark | None) -> int | None:
    return mark.line + 1 if mark is not None else None
