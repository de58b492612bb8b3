"""The ssh transport: raw bytes into ``cat >> .<name>.nfpart`` on the node.

By default the bytes go through OpenSSH's ``ssh`` binary (``sshpipe``) and the control steps
(prepare, resume check, sha256, rename) over one asyncssh connection; without the ``ssh``
binary the bytes stream over that asyncssh connection's exec channel instead.
"""

from __future__ import annotations

from netfault.engine.transports.execpath import Codec, ExecTransport


class SshTransport(ExecTransport):
    """Push/pull over SSH to ``node.hostname:ssh_port`` with resume and sha256 verification."""

    name = "ssh"
    codec = Codec()
