"""The ssh transport: raw bytes over an asyncssh exec channel (``cat > .<name>.nfpart``).

Measured here against an asyncssh node, a streamed exec channel beat asyncssh's SFTP client
(see ``bench/transfer.py``), and it lets the node hash and rename in the same connection.
"""

from __future__ import annotations

from netfault.engine.transports.execpath import Codec, ExecTransport


class SshTransport(ExecTransport):
    """Push/pull over SSH to ``node.hostname:ssh_port`` with resume and sha256 verification."""

    name = "ssh"
    codec = Codec()
