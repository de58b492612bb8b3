"""The node's exec-channel faults as pure byte rewrites and command classification."""

from __future__ import annotations

import pytest

from netfault.simulator.node.faults import (
    ChannelMangling,
    ChannelReset,
    NodeFaults,
    channel_transport,
)


@pytest.mark.parametrize(
    ("command", "transport"),
    [
        ("trap '' XFSZ; cat > 'data/.a.nfpart'", "ssh"),
        ("tail -c +5 -- 'data/a'", "ssh"),
        ("trap '' XFSZ; base64 -d >> 'data/.a.nfpart'", "base64"),
        ("cat -- 'data/a' | base64", "base64"),
        ("rsync --server -logDtpre.iLsfxC . data/a", "rsync"),
        ("scp -t data/a", "scp"),
        ("mkdir -p -- data && wc -c < 'data/.a.nfpart'", None),
        ("sha256sum < 'data/a'", None),
        (None, None),
    ],
)
def test_exec_requests_are_told_apart_by_what_they_run(
    command: str | None, transport: str | None
) -> None:
    assert channel_transport(command) == transport


def test_strip_high_bit_on_every_byte_and_on_none() -> None:
    data = bytes([0x41, 0x80, 0xFF, 0x0A])
    assert ChannelMangling("strip_high_bit").inbound(data) == bytes([0x41, 0x00, 0x7F, 0x0A])
    assert ChannelMangling("strip_high_bit", probability=0).inbound(data) == data


def test_partial_probability_is_seeded() -> None:
    data = bytes(range(128, 256)) * 8
    first = ChannelMangling("strip_high_bit", probability=0.5, seed=3).inbound(data)
    again = ChannelMangling("strip_high_bit", probability=0.5, seed=3).inbound(data)
    assert first == again != data
    changed = sum(a != b for a, b in zip(first, data, strict=True))
    assert 0 < changed < len(data)


def test_lf_to_crlf_rewrites_output_only() -> None:
    mangling = ChannelMangling("lf_to_crlf")
    assert mangling.outbound(b"a\nb\n") == b"a\r\nb\r\n"
    assert mangling.inbound(b"a\nb\n") == b"a\nb\n"


def test_pty_consumes_control_characters_and_maps_cr_on_input() -> None:
    mangling = ChannelMangling("pty")
    assert mangling.inbound(b"a\x03b\x04c\rd\x1ae\x00") == b"abc\nde\x00"
    assert mangling.outbound(b"x\ny") == b"x\r\ny"


def test_targets_pick_the_faults_aimed_at_the_command() -> None:
    faults = NodeFaults()
    faults.channel_mangling = ChannelMangling("pty", transport="ssh")
    faults.channel_reset = ChannelReset(10, transport="base64")
    assert faults.targets("cat > x") == (faults.channel_mangling, None)
    assert faults.targets("base64 -d > x") == (None, faults.channel_reset)
    assert faults.targets("sha256sum < x") == (None, None)
    faults.clear()
    assert faults.targets("cat > x") == (None, None)
