"""SSH keys of a fake node: client keys the engine logs in with, host keys, known_hosts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

KEY_ALGORITHM = "ssh-ed25519"


@dataclass(frozen=True)
class ClientKey:
    """A client key pair on disk: ``private_path`` (OpenSSH format, no passphrase)."""

    private_path: Path
    public_key: str

    @classmethod
    def generate(cls, directory: Path) -> ClientKey:
        """Write a new ed25519 key pair into ``directory`` (``id_ed25519[_N]`` and ``.pub``)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = _free_name(directory, "id_ed25519")
        key = asyncssh.generate_private_key(KEY_ALGORITHM, comment=f"netfault@{path.name}")
        write_private_key(key, path)
        public = key.export_public_key("openssh").decode("ascii").strip()
        path.with_name(path.name + ".pub").write_text(public + "\n")
        return cls(private_path=path, public_key=public)

    def load_public(self) -> asyncssh.SSHKey:
        return asyncssh.import_public_key(self.public_key)


def _free_name(directory: Path, stem: str) -> Path:
    path = directory / stem
    n = 1
    while path.exists():
        path = directory / f"{stem}_{n}"
        n += 1
    return path


def write_private_key(key: asyncssh.SSHKey, path: Path) -> None:
    """Write ``key`` in OpenSSH format, readable only by its owner (OpenSSH insists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.export_private_key("openssh"))
    os.chmod(path, 0o600)


def read_authorized_keys(path: Path) -> list[asyncssh.SSHKey]:
    """Public keys from an OpenSSH ``authorized_keys`` file (plain key lines, no options)."""
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(asyncssh.import_public_key(line))
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: not a public key line ({exc})") from exc
    return keys


def load_or_create_host_key(directory: Path) -> asyncssh.SSHKey:
    """The host key kept in ``directory`` (``ssh_host_ed25519_key``), created when missing."""
    path = directory / "ssh_host_ed25519_key"
    if path.exists():
        return asyncssh.read_private_key(path)
    directory.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key(KEY_ALGORITHM)
    write_private_key(key, path)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key("openssh"))
    return key


class HostKeys:
    """A node's persistent host key plus the replacement shown while ``host_key_changed``.

    Several nodes may share one ``original`` (a fake cluster generates one host key for all
    its nodes); the replacement is each node's own, generated the first time the fault is on,
    so a node's ``host_key_changed`` never matches what the known_hosts lines trust.
    """

    def __init__(self, original: asyncssh.SSHKey | None = None) -> None:
        self.original = original or asyncssh.generate_private_key(KEY_ALGORITHM)
        self._replacement: asyncssh.SSHKey | None = None
        public = self.original.export_public_key("openssh").decode("ascii").split()
        self._key_text = f"{public[0]} {public[1]}"

    @property
    def replacement(self) -> asyncssh.SSHKey:
        if self._replacement is None:
            self._replacement = asyncssh.generate_private_key(KEY_ALGORITHM)
        return self._replacement

    def current(self, changed: bool) -> asyncssh.SSHKey:
        return self.replacement if changed else self.original

    def known_hosts_lines(self, routes: list[tuple[str, int]]) -> str:
        """known_hosts lines trusting the original key on each (host, port) route."""
        return "".join(f"{_host_pattern(host, port)} {self._key_text}\n" for host, port in routes)


def _host_pattern(host: str, port: int) -> str:
    # OpenSSH writes bare hosts for port 22 and [host]:port otherwise; asyncssh matches both.
    return host if port == 22 else f"[{host}]:{port}"
