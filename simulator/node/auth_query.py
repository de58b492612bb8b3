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

import os
import socket
import sys

TIMEOUT = 10.0
LIMIT = 1 << 20  # an answer is a few authorized_keys lines


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
            sock.connect(path)
            sock.sendall(connection.encode() + b"\n")
            while len(answer) < LIMIT and (chunk := sock.recv(65536)):
                answer += chunk
    except OSError:
        return 1
    sys.stdout.buffer.write(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
