"""Node and transport configuration, thresholds from the environment, and the hosts file."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.engine.config import NodeConfig, TransportConfig, TransportSpec
from netfault.engine.errors import ConfigError
from netfault.engine.hosts import load_hosts
from netfault.engine.thresholds import Thresholds, load_thresholds


# -- NodeConfig ----------------------------------------------------------------------------------
def test_node_config_defaults_match_the_architecture_guide() -> None:
    node = NodeConfig(hostname="gpu-1")

    assert (node.name, node.ssh_port, node.http_port, node.http_scheme) == (
        "gpu-1",
        22,
        8080,
        "http",
    )
    assert node.tailscale_ip is None


def test_default_transport_order_starts_with_tailscale_only_when_the_node_has_an_ip() -> None:
    assert NodeConfig(hostname="a", tailscale_ip="100.64.0.1").transport_order() == [
        "tailscale",
        "ssh",
        "base64",
        "http",
    ]
    assert NodeConfig(hostname="a").transport_order() == ["ssh", "base64", "http"]


def test_configured_transports_go_by_priority_with_last_resort_last() -> None:
    node = NodeConfig(
        hostname="a",
        tailscale_ip="100.64.0.1",
        transports=(
            TransportSpec("base64", priority=0, last_resort=True),
            TransportSpec("ssh", priority=2, fallback=True),
            TransportSpec("tailscale", priority=3),
            TransportSpec("p2p", priority=1),
        ),
    )

    assert node.transport_order() == ["p2p", "ssh", "tailscale", "base64"]


def test_configured_tailscale_is_dropped_without_tailscale_ip() -> None:
    node = NodeConfig(
        hostname="a",
        transports=(TransportSpec("tailscale", priority=1), TransportSpec("ssh", priority=2)),
    )

    assert node.transport_order() == ["ssh"]


# -- TransportConfig -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "connect", "operation"),
    [
        pytest.param(TransportConfig.for_large_transfers(), 60.0, 600.0, id="large-transfers"),
        pytest.param(TransportConfig.for_quick_requests(), 10.0, 30.0, id="quick-requests"),
        pytest.param(TransportConfig(), 30.0, 180.0, id="default"),
    ],
)
def test_transport_config_presets(
    config: TransportConfig, connect: float, operation: float
) -> None:
    assert (config.connect_timeout, config.operation_timeout) == (connect, operation)


def test_transport_config_takes_its_timeouts_from_thresholds() -> None:
    config = TransportConfig.from_thresholds(Thresholds(connect_timeout=5.0, http_timeout=7.0))

    assert (config.connect_timeout, config.operation_timeout, config.http_timeout) == (
        5.0,
        180.0,
        7.0,
    )


# -- thresholds ----------------------------------------------------------------------------------
def test_thresholds_defaults_match_the_seed() -> None:
    t = load_thresholds({})

    assert (
        t.connect_timeout,
        t.operation_timeout,
        t.http_timeout,
        t.breaker_failure_threshold,
        t.breaker_recovery_timeout,
    ) == (30.0, 180.0, 30.0, 3, 300.0)
    assert (t.sync_failover_threshold, t.sync_backup_transport) == (1, None)


def test_thresholds_are_overridden_by_netfault_variables() -> None:
    env = {
        "NETFAULT_CONNECT_TIMEOUT": "5.5",
        "NETFAULT_BREAKER_FAILURE_THRESHOLD": "7",
        "NETFAULT_BREAKER_RECOVERY_TIMEOUT": "60",
        "NETFAULT_SYNC_FAILOVER_THRESHOLD": "2",
        "NETFAULT_SYNC_BACKUP_TRANSPORT": "rsync",
        "NETFAULT_HTTP_TIMEOUT": "",  # empty means unset
        "RINGRIFT_SYNC_BACKUP_TRANSPORT": "base64",  # another prefix is ignored
    }

    t = load_thresholds(env)

    assert t == Thresholds(
        connect_timeout=5.5,
        breaker_failure_threshold=7,
        breaker_recovery_timeout=60.0,
        sync_failover_threshold=2,
        sync_backup_transport="rsync",
    )
    assert isinstance(t.breaker_failure_threshold, int)


def test_thresholds_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETFAULT_OPERATION_TIMEOUT", "42")

    assert load_thresholds().operation_timeout == 42.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("NETFAULT_CONNECT_TIMEOUT", "soon", id="not-a-number"),
        pytest.param("NETFAULT_BREAKER_FAILURE_THRESHOLD", "2.5", id="not-an-int"),
        pytest.param("NETFAULT_OPERATION_TIMEOUT", "-1", id="negative"),
    ],
)
def test_bad_threshold_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_thresholds({variable: value})

    assert caught.value.key == variable
    assert variable in str(caught.value)
    assert value in str(caught.value)


# -- hosts file ----------------------------------------------------------------------------------
GOOD_HOSTS = """\
nodes:
  vast-12345:
    hostname: 10.0.0.5
    tailscale_ip: 100.64.0.5
    ssh_user: ubuntu
    ssh_key: keys/id_cluster
    http_port: 8770
    transports:
      - type: p2p
        priority: 1
      - type: ssh
        priority: 2
        fallback: true
      - type: base64
        priority: 3
        last_resort: true
  lambda-2:
    hostname: lambda-2.internal
"""


def test_load_hosts_reads_nodes_and_their_transports(tmp_path: Path) -> None:
    path = tmp_path / "distributed_hosts.yaml"
    path.write_text(GOOD_HOSTS)

    nodes = load_hosts(path)

    assert list(nodes) == ["vast-12345", "lambda-2"]
    vast = nodes["vast-12345"]
    assert (vast.hostname, vast.tailscale_ip, vast.ssh_user, vast.http_port, vast.ssh_port) == (
        "10.0.0.5",
        "100.64.0.5",
        "ubuntu",
        8770,
        22,
    )
    assert vast.ssh_key == tmp_path / "keys" / "id_cluster"
    assert vast.transports[1] == TransportSpec("ssh", priority=2, fallback=True)
    assert vast.transport_order() == ["p2p", "ssh", "base64"]
    assert nodes["lambda-2"] == NodeConfig(hostname="lambda-2.internal", name="lambda-2")


def test_load_hosts_accepts_nodes_at_the_top_level(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text("n1:\n  hostname: 10.0.0.1\nn2:\n  hostname: n2.lan\n  ssh_port: 2222\n")

    nodes = load_hosts(path)

    assert (nodes["n1"].hostname, nodes["n2"].hostname, nodes["n2"].ssh_port) == (
        "10.0.0.1",
        "n2.lan",
        2222,
    )


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        pytest.param(
            "n1:\n  hostname: a\n  colour: red\n", 3, "n1.colour", "unknown key", id="unknown-key"
        ),
        pytest.param(
            "n1:\n  transports:\n    - type: p2p\n    - type: carrier-pigeon\n",
            4,
            "n1.transports[1].type",
            "unknown transport 'carrier-pigeon'",
            id="unknown-transport-type",
        ),
        pytest.param(
            "n1:\n  transports:\n    - {type: p2p, weight: 3}\n",
            3,
            "n1.transports[0].weight",
            "unknown key",
            id="unknown-transport-key",
        ),
        pytest.param(
            "n1:\n  hostname: a\n  ssh_port: 70000\n",
            3,
            "n1.ssh_port",
            "port number",
            id="port-out-of-range",
        ),
        pytest.param(
            "n1:\n  http_port: eighty\n", 2, "n1.http_port", "port number", id="port-not-a-number"
        ),
        pytest.param(
            "n1:\n  hostname: a\n  hostname: b\n",
            3,
            "hostname",
            "duplicate key",
            id="duplicate-key",
        ),
        pytest.param("n1:\n  hostname: [a\n", 3, None, "invalid YAML", id="invalid-yaml"),
        pytest.param(
            "n1:\n  ssh_port: 2222\n", 2, "n1", "missing required key 'hostname'", id="no-hostname"
        ),
        pytest.param(
            "n1:\n  hostname: a\n  transports: []\n",
            3,
            "n1.transports",
            "empty list; omit 'transports'",
            id="empty-transports",
        ),
        pytest.param(
            "version: 1\nnodes:\n  n1:\n    hostname: a\n",
            1,
            "version",
            "top-level key beside 'nodes:'",
            id="nodes-beside-another-key",
        ),
    ],
)
def test_bad_hosts_file_error_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, words: str
) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_hosts(path)

    err = caught.value
    assert (err.file, err.line, err.key) == (str(path), line, key)
    assert str(err).startswith(f"{path}:{line}: ")
    assert words in str(err)
    if key is not None:
        assert key in str(err)


def test_missing_hosts_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError, match="absent.yaml: cannot read"):
        load_hosts(path)
