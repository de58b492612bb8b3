"""The files a real OpenSSH ``sshd`` node runs from: config, session wrapper, keys, fault flags.

Everything lives in one directory of the node's sandbox. Faults are file changes that sshd
picks up on the next connection without a restart: ``authorized_keys`` is read per login, the
host key file is reloaded by the per-connection re-exec (OpenSSH < 9.8), and the session wrapper
checks the ``pty`` flag file per session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

import asyncssh

from netfault.simulator.node import pty_session, sshd_auth
from netfault.simulator.node.errors import NodeStartError
from netfault.simulator.node.keys import write_private_key

PACKAGE = "openssh-server"
SBIN_PATH = "/usr/sbin:/usr/local/sbin"  # searched after PATH: sshd is rarely on a user's PATH
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server",
    "/usr/libexec/sftp-server",
)
# Debian's privilege separation directory; sshd started as root refuses to run without it.
PRIVSEP_DIR = Path("/run/sshd")


def current_user() -> str:
    """The only user an sshd started by this process can log in."""
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass(frozen=True)
class SshdBinaries:
    sshd: Path
    sftp_server: Path

    @classmethod
    def find(cls, node: str) -> SshdBinaries:
        """The installed sshd and sftp-server, or NodeStartError naming the package."""
        found = shutil.which("sshd") or shutil.which("sshd", path=SBIN_PATH)
        sftp = next((Path(p) for p in SFTP_SERVERS if os.access(p, os.X_OK)), None)
        if found is None or sftp is None:
            missing = "sshd" if found is None else "sftp-server"
            raise NodeStartError(
                f"node {node}: ssh_server 'openssh' needs OpenSSH's {missing}, which is not "
                f"installed; install the {PACKAGE} package (apt-get install {PACKAGE}) "
                "or use ssh_server 'asyncssh'",
                node=node,
            )
        return cls(Path(found), sftp)


class SshdFiles:
    """Paths and writers for one node's sshd directory."""

    def __init__(self, directory: Path, home: Path, user: str) -> None:
        self.dir = directory
        self.home = home
        self.user = user
        self.config = directory / "sshd_config"
        self.host_key = directory / "ssh_host_ed25519_key"
        self.authorized_keys = directory / "authorized_keys"
        self.wrapper = directory / "session.sh"
        self.pty_flag = directory / "pty"
        self.quota = directory / "disk_quota"
        self.sessions = directory / "sessions"
        self.events = directory / "events"  # FIFO: sessions report faults (sshd_events)
        self.auth_socket = directory / "auth.sock"  # sshd asks which keys (sshd_auth)

    def write_all(
        self, host: str, port: int, binaries: SshdBinaries, host_key: asyncssh.SSHKey
    ) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.write_host_key(host_key)
        self.write_wrapper()
        _replace(self.config, self.config_text(host, port, binaries.sftp_server))
        if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    def config_text(self, host: str, port: int, sftp_server: Path) -> str:
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [
            f"ListenAddress {listen}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "PidFile none",
            "UsePAM no",
            # The sandbox lives in /tmp, which StrictModes would reject as group/world writable.
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "PermitUserEnvironment no",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "LoginGraceTime 30",
            # The default 10:30:100 drops a random share of a cluster test's parallel logins.
            "MaxStartups 200",
            "MaxSessions 64",
            # The node's home from the first process on: bash started by sshd (Debian builds it
            # with SSH_SOURCE_BASHRC) then reads the node's ~/.bashrc, not the account's.
            f"SetEnv HOME={self.home}",
            f"Subsystem sftp {sftp_server}",
            f"ForceCommand {self.wrapper}",
        ]
        if sshd_auth.command_available():
            lines += sshd_auth.config_lines(self.auth_socket, self.user)
        return "".join(line + "\n" for line in lines)

    def write_wrapper(self) -> None:
        """The ForceCommand every session runs (shell, exec and the sftp subsystem alike)."""
        home, flag = quote(str(self.home)), quote(str(self.pty_flag))
        runner = f"{quote(sys.executable)} -I {quote(str(pty_session.__file__))}"
        quota = quote(str(self.quota))
        text = f"""#!/bin/sh
# Every session of this node: record its session id (for cleanup), enter the node's home,
# then run what the client asked for: under the session runner while the pty flag exists (a
# pseudo-terminal) or there is a disk quota (RLIMIT_FSIZE set to what is left of it); the
# runner reports what the faults did through the node's events FIFO.
# The session id, not $$: a login shell that does not exec its -c command (dash, a user's
# /bin/sh) leads the session and this script runs as its child.
read -r _ _ _ _ _ sid _ < /proc/$$/stat
echo "$sid" >> {quote(str(self.sessions))}
HOME={home}; export HOME
NETFAULT_SESSION_EVENTS={quote(str(self.events))}; export NETFAULT_SESSION_EVENTS
cd "$HOME" || {{ echo "netfault node: cannot enter $HOME" >&2; exit 1; }}
limit=-
if [ -e {quota} ]; then
    used=$(find . -type f -printf '%s\\n' | awk '{{s += $1}} END {{print s + 0}}')
    limit=$(( $(cat {quota}) - used ))
    [ "$limit" -gt 0 ] || limit=0
fi
if [ -e {flag} ]; then exec {runner} pty "$limit" "$SSH_ORIGINAL_COMMAND"; fi
if [ "$limit" != - ]; then exec {runner} plain "$limit" "$SSH_ORIGINAL_COMMAND"; fi
if [ -z "$SSH_ORIGINAL_COMMAND" ]; then exec "$SHELL" -l; fi
exec "$SHELL" -c "$SSH_ORIGINAL_COMMAND"
"""
        _replace(self.wrapper, text, mode=0o755)

    def write_host_key(self, key: asyncssh.SSHKey) -> None:
        tmp = self.host_key.with_name(self.host_key.name + ".tmp")
        write_private_key(key, tmp)
        os.replace(tmp, self.host_key)

    def write_authorized(self, keys: list[asyncssh.SSHKey]) -> None:
        _replace(self.authorized_keys, authorized_text(keys), mode=0o600)

    def set_pty(self, on: bool) -> None:
        if on:
            self.pty_flag.touch()
        else:
            self.pty_flag.unlink(missing_ok=True)

    def set_quota(self, quota: int | None) -> None:
        if quota is None:
            self.quota.unlink(missing_ok=True)
        else:
            _replace(self.quota, f"{quota}\n")

    def session_ids(self) -> set[int]:
        try:
            return {int(s) for s in self.sessions.read_text().split() if s.isdigit()}
        except FileNotFoundError:
            return set()


def authorized_text(keys: list[asyncssh.SSHKey]) -> str:
    """``keys`` as authorized_keys lines."""
    lines = [k.export_public_key("openssh").decode("ascii").strip() for k in keys]
    return "".join(line + "\n" for line in lines)


def _replace(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``path`` atomically, so sshd never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
