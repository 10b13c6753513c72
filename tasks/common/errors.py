"""Error types that name what went wrong, where, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path


class HybridrecError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(HybridrecError):
    """A parameter is missing, unknown or out of range."""

    def __init__(self, param: str, expected: str, found: object) -> None:
        self.param, self.expected, self.found = param, expected, found
        super().__init__(f"parameter {param!r}: expected {expected}, found {found!r}")


class UnknownNameError(ConfigError):
    """A dataset, model, protocol ... name that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str], param: str | None = None) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        where = param or kind
        super().__init__(where, f"one of the registered {kind} names {self.valid}", name)


class DataError(HybridrecError):
    """Bad input data: names the file, the line (1-based, as an editor shows it) and expected vs found."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        line: int | None = None,
        expected: str | None = None,
        found: object = None,
    ) -> None:
        self.file, self.line, self.expected, self.found = str(file), line, expected, found
        loc = f"{file}" + (f", line {line}" if line is not None else "")
        detail = message
        if expected is not None:
            detail += f": expected {expected}, found {found!r}"
        super().__init__(f"{loc}: {detail}")


class AcquisitionError(HybridrecError):
    """Raw files could not be obtained or failed verification."""


class ValidationFailed(HybridrecError):
    """A Great Expectations suite failed on a canonical table or a split."""
