"""Remote paths and POSIX shell commands, every operand quoted with ``shlex.quote``.

A remote name containing spaces, quotes, ``$(...)`` or ``;`` is a literal file name here,
never shell syntax. The receiver writes to ``.<name>.nfpart`` beside the final name and
renames it (``mv -fT``, atomic within a directory) only after its sha256 matched.

Fencing: no two writers ever append to the same partial. A writer of the shared, resumable
``.<name>.nfpart`` holds an exclusive ``flock`` on that file for its whole life (the lock
belongs to the open file, which the writing process inherits, so it lasts until the last
process writing it is gone, even when the client that started it gave up long ago). Under the
lock it checks that the partial is still exactly the prefix its resume was computed on, and
once the whole file arrived it renames the partial to a name of its own,
``.<name>.nfpart.<token>``, which only its own attempt commits. A writer that cannot get the
lock within a bounded wait (a previous attempt's writer still drains bytes queued in the
network) writes a fresh copy straight to its own token name instead. Whoever finishes a file
removes the partials other writers left for it, unless a live writer still holds them.
"""

from __future__ import annotations

import posixpath
import re
from shlex import quote

from netfault.engine.config import NodeConfig

PART_SUFFIX = ".nfpart"
# The node agent's resumable-upload partial (its PUT protocol), swept like ours.
AGENT_PART_SUFFIX = ".netfault-partial"
MISMATCH_EXIT = 97
BUSY_EXIT = 95  # the partial's lock stayed taken for the whole wait: write a private copy
SHORT_EXIT = 96  # the writer's input ended before the whole file arrived
CHANGED_EXIT = 98  # the partial is no longer the prefix the resume was computed on
TAKEN_EXIT = 99  # this attempt's whole copy was gone at commit (taken for an orphan)
PARTIAL_EXIT = 94  # a fresh write found a partial to resume: check it and resume instead
ABANDONED_EXIT = 93  # a commit started ahead got no digest: its push failed, nothing done
TAKEN_MARK = "netfault: this attempt's copy was taken over by another push; send it again"
FENCE_EXITS = (BUSY_EXIT, CHANGED_EXIT, PARTIAL_EXIT)
BUSY_MARK = "netfault: partial busy"
CHANGED_MARK = "netfault: partial changed"
PARTIAL_MARK = "netfault: a partial is there to resume"
FENCE_MARKS = {BUSY_EXIT: BUSY_MARK, CHANGED_EXIT: CHANGED_MARK, PARTIAL_EXIT: PARTIAL_MARK}
READY_MARK = "netfault: writing"  # on stdout: the writer holds its lock, send the bytes
LOCK_WAIT_MAX = 5.0
DISCARD_LOCK_WAIT = 1.0
# A whole per-attempt copy waits, unlocked, for its own attempt's commit (a round trip after
# its writer ended). Only a copy left this long is taken as orphaned: adopted or swept.
ORPHAN_AGE = 10
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


def own_name(final: str, token: str) -> str:
    """The partial name only one attempt (``token``) writes and commits."""
    if not token.isalnum():
        raise ValueError(f"not an attempt token: {token!r}")
    return f"{part_name(final)}.{token}"


def agent_part_name(final: str) -> str:
    directory, base = posixpath.split(final)
    return posixpath.join(directory, f".{base}{AGENT_PART_SUFFIX}")


def lock_wait(operation_timeout: float) -> float:
    """How long a resume waits for a previous writer of the partial before going private."""
    return max(0.5, min(LOCK_WAIT_MAX, operation_timeout / 3))


class FenceRefused(Exception):
    """The fenced writer did not start: the partial was busy, changed, or (a fresh write)
    there to resume (``code`` says)."""

    def __init__(self, code: int) -> None:
        super().__init__(FENCE_MARKS[code])
        self.code = code


def fence_code(exit_status: int | None, stderr: str) -> int | None:
    """BUSY_EXIT/CHANGED_EXIT/PARTIAL_EXIT when a fenced writer refused to start, else None."""
    if exit_status in FENCE_EXITS:
        return exit_status
    for code, mark in FENCE_MARKS.items():  # rsync reports its remote side's exit as its own
        if mark in stderr:
            return code
    return None


def _locked(tmp: str, wait: float) -> str:
    """Open ``tmp`` as fd 9 and take its lock; again if it was renamed or removed meanwhile."""
    t = quote(tmp)
    busy = f"{{ echo {quote(BUSY_MARK)} >&2; exit {BUSY_EXIT}; }}"
    return (
        f"n=0; while :; do exec 9<> {t} || exit; flock -x -w {wait:.2f} 9 || {busy}; "
        f"[ {t} -ef /dev/fd/9 ] && break; n=$((n+1)); [ $n -lt 5 ] || {busy}; done"
    )


def _complete(written: str, own: str, total: int) -> str:
    """Rename a whole ``written`` to ``own``; report a short one (and keep it for resume)."""
    w = quote(written)
    return (
        f's=$(wc -c < {w}); if [ "$s" -ne {int(total)} ]; then '
        f'[ "$s" -gt 0 ] || rm -f -- {w}; '  # nothing to resume: leave nothing behind
        f'echo "netfault: the node received $s of {int(total)} bytes" >&2; exit {SHORT_EXIT}; '
        f"fi; mv -fT -- {w} {quote(own)}"
    )


def _unchanged(tmp: str, offset: int, prefix_sha: str) -> str:
    if not _SHA_RE.match(prefix_sha):
        raise ValueError(f"not a sha256 hex digest: {prefix_sha!r}")
    t = quote(tmp)
    changed = f"{{ echo {quote(CHANGED_MARK)} >&2; exit {CHANGED_EXIT}; }}"
    return (
        f'[ "$(wc -c < {t})" -eq {int(offset)} ] && h=$(head -c {int(offset)} -- {t} | {SHA256}) '
        f'&& [ "${{h%% *}}" = {prefix_sha} ] || {changed}'
    )


def cmd_fenced_write(
    final: str, token: str, offset: int, prefix_sha: str, total: int, wait: float, decode: str = ""
) -> str:
    """Append stdin (through ``decode``) to the shared partial after ``offset`` bytes, under
    its lock; the whole file ends up at ``own_name(final, token)``. Prints ``READY_MARK``
    once it holds the lock: the client sends nothing before."""
    tmp = part_name(final)
    check = _unchanged(tmp, offset, prefix_sha) if offset else f": > {quote(tmp)}"
    write = f"echo {quote(READY_MARK)}; {decode or 'cat'} >> {quote(tmp)} || exit"
    # An ignored SIGXFSZ turns a file-size limit into EFBIG, which the command reports.
    return (
        f"trap '' XFSZ; {_locked(tmp, wait)}; {check}; {write}; "
        f"{_complete(tmp, own_name(final, token), total)}"
    )


def cmd_fresh_write(final: str, token: str, total: int, wait: float, decode: str = "") -> str:
    """``cmd_prepare_push`` and ``cmd_fenced_write`` from byte 0 in one command, for a push
    that finds no partial (one session instead of two). Exits ``PARTIAL_EXIT``, writing
    nothing, when a partial (or an orphan it adopted) holds bytes to resume from."""
    return f"{_prepared(final)}; {cmd_fenced_write(final, token, 0, '0' * 64, total, wait, decode)}"


def _prepared(final: str) -> str:
    """``cmd_prepare_push``, silent; then exit ``PARTIAL_EXIT`` if a partial holds bytes."""
    found = f"{{ echo {quote(PARTIAL_MARK)} >&2; exit {PARTIAL_EXIT}; }}"
    return (
        f"{{ {cmd_prepare_push(final)}; }} > /dev/null || exit; "
        f"[ -s {quote(part_name(final))} ] && {found}"
    )


def cmd_private_write(final: str, token: str, total: int, decode: str = "") -> str:
    """Write stdin (through ``decode``) to this attempt's own partial from byte 0, locked so a
    sweep leaves it alone while it is written; a short copy is deleted (nobody resumes it)."""
    own = quote(own_name(final, token))
    return (
        f"trap '' XFSZ; exec 9> {own} && flock -x 9 && echo {quote(READY_MARK)} && "
        f"{decode or 'cat'} > {own} && "
        f'{{ [ "$(wc -c < {own})" -eq {int(total)} ] || {{ echo "netfault: the node received '
        f'$(wc -c < {own}) of {int(total)} bytes" >&2; false; }}; }} '
        f"|| {{ rc=$?; rm -f -- {own}; exit $rc; }}"
    )


def wrap_fenced(
    final: str, offset: int, total: int, token: str, wait: float, prepare: bool = False
) -> str:
    """A shell prefix running a remote writer of the shared partial (e.g. ``rsync --server
    ...`` appended as arguments) under the partial's lock, renamed to its own name when whole.
    ``prepare`` (a write from byte 0): run ``cmd_prepare_push`` first and exit
    ``PARTIAL_EXIT``, writing nothing, when a partial holds bytes to resume from."""
    tmp = part_name(final)
    fresh = "" if offset else f": > {quote(tmp)}; "
    script = (
        f"{_prepared(final) + '; ' if prepare and not offset else ''}"
        f'{_locked(tmp, wait)}; {fresh}"$@" || exit; '
        f"{_complete(tmp, own_name(final, token), total)}"
    )
    return f"trap '' XFSZ; sh -c {quote(script)} sh"


def _orphaned(var: str) -> str:
    """A shell test: the per-attempt copy in ``$var`` was last written ``ORPHAN_AGE`` ago."""
    return f'[ $(( $(date +%s) - $(stat -c %Y -- "${var}") )) -ge {ORPHAN_AGE} ]'


def cmd_sweep(final: str) -> str:
    """Remove the partials other writers left for ``final``: the shared and the agent's unless
    a live writer holds them, the per-attempt copies once orphaned."""
    t, a = quote(part_name(final)), quote(agent_part_name(final))
    free = 'flock -n "$f" rm -f -- "$f"'
    return (
        f'for f in {t} {a}; do [ -f "$f" ] && {free}; done; '
        f'for f in {t}.*; do [ -f "$f" ] && {_orphaned("f")} && {free}; done; true'
    )


def cmd_discard(final: str, token: str, shared: bool = True) -> str:
    """Remove this attempt's own partial, and (``shared``) the shared one unless a live writer
    holds it for ``DISCARD_LOCK_WAIT`` seconds (this attempt's own writer, which just failed,
    may still be exiting: an OpenSSH node ends it after the client saw the error)."""
    t, own = quote(part_name(final)), quote(own_name(final, token))
    if not shared:
        return f"rm -f -- {own}"
    return f"rm -f -- {own}; [ -f {t} ] && flock -w {DISCARD_LOCK_WAIT:g} {t} rm -f -- {t}; true"


def parent_dir(path: str) -> str:
    return posixpath.dirname(path) or "."


def cmd_prepare_push(final: str) -> str:
    """Create the destination directory; print the size of an existing partial (or 0).
    Fails, writing nothing, when ``final`` is a directory.

    With no shared partial, an orphaned per-attempt copy (its writer finished after its
    client was gone, or a private copy was cut off) is adopted as the shared partial, so the
    resume check can reuse it (``mv -n``: never over a shared partial created meanwhile).
    """
    tmp = quote(part_name(final))
    adopt = (
        f'for f in {tmp}.*; do [ -f {tmp} ] && break; [ -f "$f" ] && {_orphaned("f")} && '
        f'flock -n "$f" mv -n -- "$f" {tmp}; done'
    )
    return (
        f"{_refuse_directory(final)}mkdir -p -- {quote(parent_dir(final))} && "
        f"{{ {adopt}; }}; if [ -f {tmp} ]; then wc -c < {tmp}; else echo 0; fi"
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


def cmd_stat_sha(path: str) -> str:
    """``cmd_stat`` then ``cmd_sha`` in one command: the size line, then the digest line."""
    return f"{{ {cmd_stat(path)}; }} && {cmd_sha(path)}"


def cmd_prefix_sha(path: str, length: int) -> str:
    return f"head -c {int(length)} -- {quote(path)} | {SHA256}"


def cmd_sha(path: str) -> str:
    return f"{SHA256} < {quote(path)}"


def cmd_read(path: str, offset: int, encode: str = "") -> str:
    """Write ``path`` to stdout from byte ``offset`` on (through ``encode``, e.g. ``base64``)."""
    p = quote(path)
    source = f"tail -c +{int(offset) + 1} -- {p}" if offset else f"cat -- {p}"
    return f"{source} | {encode}" if encode else source


def cmd_commit(tmp: str, final: str, sha256: str) -> str:
    """Rename ``tmp`` to ``final`` only if its sha256 is ``sha256``; else delete it and fail.
    Then sweep the partials other writers left for ``final``."""
    if not _SHA_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return _commit(tmp, final, sha256)


def cmd_commit_on_input(tmp: str, final: str) -> str:
    """``cmd_commit`` with the expected sha256 read from stdin's first line, so the session
    can start before the copy is written; stdin ending without a digest (the push failed)
    exits ``ABANDONED_EXIT`` having done nothing."""
    abandoned = f"exit {ABANDONED_EXIT}"
    return (
        f"read -r want || {abandoned}; case $want in *[!0-9a-f]*|'') {abandoned};; esac; "
        f"[ ${{#want}} -eq 64 ] || {abandoned}; " + _commit(tmp, final, '"$want"')
    )


def _commit(tmp: str, final: str, want: str) -> str:
    """The commit of ``tmp`` against ``want``, a shell word that expands to the digest."""
    t = quote(tmp)
    gone = f"echo {quote(TAKEN_MARK)} >&2; exit {TAKEN_EXIT}"
    return (
        f"{{ [ -f {t} ] || {{ {gone}; }}; }} && "
        f'h=$({SHA256} < {t}) && h="${{h%% *}}" && '
        f'if [ "$h" = {want} ]; then mv -fT -- {t} {quote(final)} || {{ rm -f -- {t}; false; }}; '
        f'else rm -f -- {t}; echo "sha256 $h" >&2; exit {MISMATCH_EXIT}; fi && '
        f"{{ {cmd_sweep(final)}; }}"
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
