"""sshd's AuthorizedKeysCommand on an OpenSSH node: ask the node which keys this connection
may log in with.

``python3 -I auth_query.py SOCKET`` (standalone, it imports nothing from netfault; sshd
needs a root-owned interpreter, so it runs under the system's ``/usr/bin/python3``). It
names the connection by the sshd process that runs it (one per connection: its pid and
start time, so a reused pid is another connection; OpenSSH 9.2 has no ``%C`` token for this
command), sends that to the node's unix socket and prints what the node answers: the
authorized keys, or nothing while the connection is refused. Anything going wrong prints
nothing, which refuses the login, as a failed command does in sshd.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator

TIMEOUT = 10.0
LIMIT = 1 << 20  # an answer is a few authorized_keys lines
SUN_PATH_MAX = 100  # a unix socket address holds 107 bytes; keep a margin


@contextlib.contextmanager
def socket_address(path: str) -> Iterator[str]:
    """``path`` as a unix socket address to bind or connect to: itself when it fits, else
    the same file reached through a descriptor of its directory (``/proc/self/fd/N/NAME``),
    so a node under a long TMPDIR still gets its socket where its other files are."""
    if len(os.fsencode(path)) < SUN_PATH_MAX:
        yield path
        return
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{os.path.basename(path)}"
    finally:
        os.close(directory)


def connection_id() -> str:
    """The sshd process asking: pid and start time (field 22 of its /proc stat)."""
    parent = os.getppid()
    with open(f"/proc/{parent}/stat", encoding="ascii", errors="replace") as stat:
        started = stat.read().rsplit(")", 1)[1].split()[19]
    return f"{parent}:{started}"


def main(argv: list[str]) -> int:
    path = argv[1]
    answer = b""
    try:
        connection = connection_id()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            with socket_address(path) as address:
                sock.connect(address)
            sock.sendall(connection.encode() + b"\n")
            while len(answer) < LIMIT and (chunk := sock.recv(65536)):
                answer += chunk
    except OSError:
        return 1
    sys.stdout.buffer.write(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
