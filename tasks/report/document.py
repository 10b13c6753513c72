"""The report's document model: headings, paragraphs, bullets, tables and images, built once and rendered twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DASH = "—"


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str


Inline = str | Code | Link


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    name: str
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


@dataclass
class Doc:
    """Blocks plus the PNGs they show (file name under figures/ → bytes)."""

    blocks: list[Block] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def para(self, *parts: Inline) -> None:
        self.blocks.append(Paragraph(tuple(parts)))

    def note(self, text: str) -> None:
        self.para(*_code_spans(f"Note: {text}."))

    def bullets(self, items: Iterable[str | tuple[Inline, ...]]) -> None:
        self.blocks.append(Bullets(tuple(_code_spans(i) if isinstance(i, str) else i for i in items)))

    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows)))

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.figures[name] = png
        self.blocks.append(Image(name, alt))


def _code_spans(text: str) -> tuple[Inline, ...]:
    """Split ``a `b` c`` into text and Code parts."""
    pieces = text.split("`")
    return tuple(Code(p) if i % 2 else p for i, p in enumerate(pieces) if p)
