"""Remote paths and POSIX shell commands, every operand quoted with ``shlex.quote``.

A remote name containing spaces, quotes, ``$(...)`` or ``;`` is a literal file name here,
never shell syntax. The receiver writes to ``.<name>.nfpart`` beside the final name and
renames it (``mv -fT``, atomic within a directory) only after its sha256 matched.
"""

from __future__ import annotations

import posixpath
import re
from shlex import quote

from netfault.engine.config import NodeConfig

PART_SUFFIX = ".nfpart"
MISMATCH_EXIT = 97
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# sha256 of stdin as ``<hex> ...``: OpenSSL's is much faster than coreutils' sha256sum on CPUs
# without SHA instructions (figures in the README's benchmarks); sha256sum where it is missing.
SHA256 = (
    "{ if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }"
)


def remote_path_for(node: NodeConfig, remote_path: str) -> str:
    """``remote_path`` joined under the node's base_path, guarded against a leading dash."""
    path = posixpath.join(node.base_path, remote_path) if node.base_path else remote_path
    if not path or path.endswith("/"):
        raise ValueError(f"remote path {remote_path!r} names a directory, not a file")
    return path if path.startswith("/") else "./" + path.removeprefix("./")


def part_name(final: str) -> str:
    """The temporary name a receiver writes before the atomic rename."""
    directory, base = posixpath.split(final)
    return posixpath.join(directory, f".{base}{PART_SUFFIX}")


def parent_dir(path: str) -> str:
    return posixpath.dirname(path) or "."


def cmd_prepare_push(final: str) -> str:
    """Create the destination directory; print the size of an existing partial (or 0)."""
    tmp = quote(part_name(final))
    return (
        f"{_refuse_directory(final)}mkdir -p -- {quote(parent_dir(final))} && "
        f"if [ -f {tmp} ]; then wc -c < {tmp}; else echo 0; fi"
    )


def cmd_stat(path: str) -> str:
    """Print the size of a regular file (fails when it is missing)."""
    p = quote(path)
    return (
        f"{_refuse_directory(path)}if [ -f {p} ]; then wc -c < {p}; "
        f"else echo 'netfault: no such file: '{p} >&2; exit 2; fi"
    )


def _refuse_directory(path: str) -> str:
    """A command prefix failing (with the words ``failures`` maps to a request error) when
    ``path`` is a directory."""
    p = quote(path)
    return f"if [ -d {p} ]; then echo 'netfault: is a directory: '{p} >&2; exit 21; fi; "


def cmd_prefix_sha(path: str, length: int) -> str:
    return f"head -c {int(length)} -- {quote(path)} | {SHA256}"


def cmd_sha(path: str) -> str:
    return f"{SHA256} < {quote(path)}"


def cmd_append(tmp: str, offset: int, decode: str = "") -> str:
    """Write stdin (through ``decode``, e.g. ``base64 -d``) to ``tmp``, after ``offset`` bytes."""
    redirect = ">>" if offset else ">"
    # An ignored SIGXFSZ turns a file-size limit into EFBIG, which the command reports.
    return f"trap '' XFSZ; {decode or 'cat'} {redirect} {quote(tmp)}"


def cmd_read(path: str, offset: int, encode: str = "") -> str:
    """Write ``path`` to stdout from byte ``offset`` on (through ``encode``, e.g. ``base64``)."""
    p = quote(path)
    source = f"tail -c +{int(offset) + 1} -- {p}" if offset else f"cat -- {p}"
    return f"{source} | {encode}" if encode else source


def cmd_commit(tmp: str, final: str, sha256: str) -> str:
    """Rename ``tmp`` to ``final`` only if its sha256 is ``sha256``; else delete it and fail."""
    if not _SHA_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    t = quote(tmp)
    return (
        f'h=$({SHA256} < {t}) && h="${{h%% *}}" && '
        f'if [ "$h" = {sha256} ]; then mv -fT -- {t} {quote(final)}; '
        f'else rm -f -- {t}; echo "sha256 $h" >&2; exit {MISMATCH_EXIT}; fi'
    )


def cmd_remove(path: str) -> str:
    return f"rm -f -- {quote(path)}"


def parse_sha(output: str) -> str:
    """The digest from ``sha256sum`` (``<hex>  -``) or ``openssl dgst -r`` (``<hex> *stdin``)."""
    digest = output.strip().split(" ", 1)[0] if output.strip() else ""
    if not _SHA_RE.match(digest):
        raise ValueError(f"unexpected sha256sum output: {output[:200]!r}")
    return digest


def parse_size(output: str) -> int:
    text = output.strip()
    if not text.isdigit():
        raise ValueError(f"unexpected size output: {text[:200]!r}")
    return int(text)
