"""The command line's parser class and argument types.

Each type checks one argument while the command line is parsed, before anything runs, so a
bad value is a one-line error naming the argument (exit 2) and nothing has been written.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, NoReturn

from netfault.engine.config import TRANSPORT_TYPES

_SQLITE_MAGIC = b"SQLite format 3\x00"


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default after its help, unless it has none worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, True, argparse.SUPPRESS, [])
        if shown and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``netfault run: error: ...``), exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _writable_dir(path: Path, what: str) -> None:
    """``path`` (which may not exist yet) could be created as a ``what`` here."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(
            f"{ancestor} is not a directory, so {what} {path} cannot be created"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"directory {ancestor} is not writable, so {what} {path} cannot be created"
        )


def output_file(text: str) -> Path:
    """A file that can be written: not a directory, writable if it exists, else creatable."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file path")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{text} is not a regular file; give a file path")
        if not path.stat().st_mode & 0o222:
            raise argparse.ArgumentTypeError(
                f"{text} is read-only; give a file that can be written"
            )
        try:
            with path.open("r+b"):  # opens for writing without truncating
                pass
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"{text} cannot be written ({exc.strerror})") from exc
        return path
    _writable_dir(path, "file")
    return path


def output_dir(text: str) -> Path:
    """A directory that exists, or that can be created; never an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory; give a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"directory {text} is not writable")
        return path
    _writable_dir(path, "directory")
    return path


def existing_text_file(text: str) -> Path:
    """A file that exists and can be read."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a regular file; give a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permission denied)")
    return path


def sqlite_file(text: str) -> Path:
    """An SQLite database file, or a path where a new one can be created."""
    path = Path(text)
    if path.is_file():
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise argparse.ArgumentTypeError(
                f"{text} is not an SQLite database; give a database file or a new path"
            )
    return output_file(text)


def positive_seconds(text: str) -> float:
    """A finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text}")
    return value


def transport_names(text: str) -> list[str]:
    """A comma-separated list of known transport names (any case), in the order given."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRANSPORT_TYPES]
    if unknown or not names:
        what = f"unknown transport {', '.join(map(repr, unknown))}" if unknown else "no transport"
        raise argparse.ArgumentTypeError(f"{what} (known: {', '.join(TRANSPORT_TYPES)})")
    return names


def node_home(text: str) -> Path:
    """A node's home directory: an existing directory or a path where one can be created."""
    return output_dir(text)
