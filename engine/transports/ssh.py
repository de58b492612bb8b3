"""The ssh transport: raw bytes into ``cat >> .<name>.nfpart`` on the node.

By default every step (prepare, resume check, the bytes, sha256, rename) runs as a session of
one OpenSSH master connection (``sshmux``, ``sshpipe``); without the ``ssh`` binary they run
on one asyncssh connection instead.
"""

from __future__ import annotations

from netfault.engine.transports.execpath import Codec, ExecTransport


class SshTransport(ExecTransport):
    """Push/pull over SSH to ``node.hostname:ssh_port`` with resume and sha256 verification."""

    name = "ssh"
    codec = Codec()
