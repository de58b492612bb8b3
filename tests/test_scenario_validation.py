"""Every value a scenario compares against is checked at load time (file:line: key + allowed
values); a file's mistakes are all reported in one run; docs and loader agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netfault.engine.errors import ConfigError
from netfault.simulator.scenario.loader import ScenarioErrors, load_scenario
from netfault.simulator.scenario.steps.check import CheckStep

ROOT = Path(__file__).resolve().parent.parent
HEAD = """name: typo
seed: 1
cluster:
  nodes: [{name: node-1}, {name: node-2}]
"""
OK_STEPS = "steps:\n  - advance: 1s\n"


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_scenario("typo.yaml", HEAD + text)
    return str(info.value)


# (scenario text after the cluster, expected error line, key and words)
TYPOS = [
    pytest.param(
        OK_STEPS + "expect:\n  no_events:\n    - {type: ATTEMPT_FAILED, error_kind: integrty}\n",
        "typo.yaml:9: expect.no_events[0].error_kind: 'integrty' is not one of: auth,",
        id="no_events-error_kind",
    ),
    pytest.param(
        OK_STEPS + "expect:\n  no_events:\n    - {type: ATTEMPT_FAILED, transport: shh}\n",
        "typo.yaml:9: expect.no_events[0].transport: 'shh' is not one of: tailscale, ssh,",
        id="no_events-transport",
    ),
    pytest.param(
        OK_STEPS + "expect:\n  no_events:\n    - {type: ATTEMPT_FAILED, node: n-1}\n",
        "typo.yaml:9: expect.no_events[0].node: unknown node 'n-1' (cluster has: node-1, node-2)",
        id="no_events-node",
    ),
    pytest.param(
        OK_STEPS + "expect:\n  events: [ATEMPT_FAILED]\n",
        "typo.yaml:8: expect.events[0]: 'ATEMPT_FAILED' is not one of: ATTEMPT_STARTED,",
        id="events-type",
    ),
    pytest.param(
        "steps:\n  - transfer: {node: node-1, path: a, expect: {tried: [shh]}}\n",
        "typo.yaml:6: steps[0].transfer.expect.tried[0]: 'shh' is not one of: tailscale,",
        id="step-tried",
    ),
    pytest.param(
        "steps:\n  - sync: {node: node-1, path: a, expect: {failed: [rsnc]}}\n",
        "typo.yaml:6: steps[0].sync.expect.failed[0]: 'rsnc' is not one of: tailscale,",
        id="step-failed",
    ),
    pytest.param(
        "steps:\n  - transfer: {node: node-1, path: a, expect: {transport_used: b64}}\n",
        "typo.yaml:6: steps[0].transfer.expect.transport_used: 'b64' is not one of:",
        id="step-transport_used",
    ),
    pytest.param(
        "steps:\n  - transfer: {node: node-1, path: a, expect: {error_kind: integrty}}\n",
        "typo.yaml:6: steps[0].transfer.expect.error_kind: 'integrty' is not one of:",
        id="step-error_kind",
    ),
    pytest.param(
        "steps:\n  - http: {node: node-1, expect: {tried: ['http:tailscal']}}\n",
        "typo.yaml:6: steps[0].http.expect.tried[0]: 'http:tailscal' is not one of:",
        id="http-tried-names-routes",
    ),
    pytest.param(
        "steps:\n  - check: {breaker: {node: node-1, state: halfopen}}\n",
        "typo.yaml:6: steps[0].check.breaker.state: 'halfopen' is not one of: closed, open, "
        "half_open",
        id="check-breaker-state",
    ),
    pytest.param(
        "steps:\n  - check: {disabled: {node: node-9}}\n",
        "typo.yaml:6: steps[0].check.disabled.node: unknown node 'node-9'",
        id="check-disabled-node",
    ),
    pytest.param(
        "steps:\n  - check: {event: {type: ALERT, error_kind: dns}}\n",
        "typo.yaml:6: steps[0].check.event.error_kind: 'dns' is not one of:",
        id="check-event",
    ),
    pytest.param(
        "steps:\n  - check: {stats: {alerts: [disabled_node]}}\n",
        "typo.yaml:6: steps[0].check.stats.alerts[0]: 'disabled_node' is not one of: "
        "transport_failures, disabled_nodes, escalation_count",
        id="check-stats-alert",
    ),
    pytest.param(
        "steps:\n  - check: {stats: {escalations: 0}}\n",
        "typo.yaml:6: steps[0].check.stats.escalations: unknown key (known: active_transports,",
        id="check-stats-key",
    ),
    pytest.param(
        OK_STEPS + "always:\n  - intact: node-3\n",
        "typo.yaml:8: always[0].intact: unknown node 'node-3'",
        id="always-node",
    ),
    pytest.param(
        OK_STEPS + "eventually:\n  - {breaker: {node: node-1, state: shut}, within: 5s}\n",
        "typo.yaml:8: eventually[0].breaker.state: 'shut' is not one of:",
        id="eventually-state",
    ),
    pytest.param(
        OK_STEPS + "expect:\n  alerts: [escalations]\n",
        "typo.yaml:8: expect.alerts[0]: 'escalations' is not one of: transport_failures,",
        id="expect-alert",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: reset, node: node-1, level: bogus}\n",
        "typo.yaml:6: steps[0].fault.level: 'bogus' is not one of: tcp, ssh",
        id="fault-level",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: corrupt_binary, node: node-1, params: {level: ssh}}\n",
        "typo.yaml:6: steps[0].fault.params: unknown key (known: kind, node, route, service, as, "
        "for_operations, for_connections, level, probability, mode, transport)",
        id="fault-params-key",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: http_down, node: node-1, for_connections: 2}\n",
        "typo.yaml:6: steps[0].fault: fault http_down closes the agent's listener, so the node "
        "sees no connection to count: for_connections works on the proxy faults (reset, "
        "corrupt_binary, timeout, latency, bandwidth, slow_close) and the node faults but "
        "http_down; use for_operations",
        id="for_connections-http-down",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: down, node: node-1, for_connections: 1}\n",
        "typo.yaml:6: steps[0].fault: fault down switches the proxy off, so it sees no "
        "connection to count",
        id="for_connections-down",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: reset, node: node-1, after_bytes: 50%, for_connections: 1}\n",
        "typo.yaml:6: steps[0].fault: a fault sized per operation (N%) is applied anew",
        id="for_connections-percent",
    ),
    pytest.param(
        "steps:\n  - fault: {kind: latency, node: node-1, for_connections: 0}\n",
        "typo.yaml:6: steps[0].fault.for_connections:",
        id="for_connections-zero",
    ),
    pytest.param(
        "steps:\n  - transfer: {node: node-1, path: a, preset: huge}\n",
        "typo.yaml:6: steps[0].transfer.preset: 'huge' is not one of: scenario, quick, large,",
        id="step-preset",
    ),
]


@pytest.mark.parametrize(("text", "message"), TYPOS)
def test_value_outside_its_vocabulary_is_a_load_error(text: str, message: str) -> None:
    assert message in errors_of(text)


def test_no_internal_type_in_a_message() -> None:
    message = errors_of("steps:\n  - check: {enabled: {node: node-1}}\n")
    assert "steps[0].check.enabled: expected a string, got a mapping with keys node" in message
    assert "Located" not in message


def test_every_mistake_of_a_file_is_reported_in_one_run() -> None:
    text = (
        "steps:\n"
        "  - fault: {kind: reset, node: node-1, level: bogus}\n"  # line 6
        "  - transfer: {node: node-7, path: a, expect: {error_kind: integrty}}\n"  # line 7
        "  - advance: soon\n"  # line 8
        "expect:\n"
        "  no_events: [{type: ATTEMPT_FAILED, transport: shh}]\n"  # line 10
        "bogus_key: 1\n"  # line 11
    )
    with pytest.raises(ScenarioErrors) as info:
        load_scenario("typo.yaml", HEAD + text)
    where = [(e.line, e.key) for e in info.value.errors]
    assert where == [
        (6, "steps[0].fault.level"),
        (7, "steps[1].transfer.node"),
        (7, "steps[1].transfer.expect.error_kind"),
        (8, "steps[2].advance"),
        (10, "expect.no_events[0].transport"),
        (11, "bogus_key"),
    ]
    assert len(str(info.value).splitlines()) == 6


def test_disabled_check_takes_reason_and_failed_transports() -> None:
    scenario = load_scenario(
        "ok.yaml",
        HEAD + "steps:\n  - check: {disabled: {node: node-1, reason: all_transports_exhausted,"
        " failed_transports: [ssh, http]}}\n",
    )
    step = scenario.steps[0]
    assert isinstance(step, CheckStep) and step.check.disabled is not None
    assert step.check.disabled.wanted() == {
        "reason": "all_transports_exhausted",
        "failed_transports": ["ssh", "http"],
    }
    assert step.describe() == (
        "check disabled(node=node-1, reason=all_transports_exhausted, "
        "failed_transports=['ssh', 'http'])"
    )


def _readme_scenario_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Scenarios", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_readme_scenario_example_loads() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "readme-example.yaml", _readme_scenario_example())
    assert [s.kind for s in scenario.steps][:2] == ["faults", "fault"]


def test_readme_fault_keys_are_the_loaders() -> None:
    """Every ``fault:`` key the README names under "Steps" is one the loader accepts."""
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"`fault` \(([^)]*)\)", readme)
    assert listed is not None
    keys = re.findall(r"`(\w+)`", listed.group(1))
    assert "params" not in keys
    values = {"as": "x", "route": "tailscale", "service": "ssh", "after_bytes": 10}
    assert set(keys) == {"kind", "node", *values}
    for key, value in values.items():
        load_scenario(
            "ok.yaml", HEAD + f"steps:\n  - fault: {{kind: reset, node: node-1, {key}: {value}}}\n"
        )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "  - tranfer: {node: node-1, path: a}\n",
            "steps[0]: unknown step 'tranfer' (steps: fault,",
        ),
        (
            "  - transfer: {node: node-1, path: a}\n    expect: {success: true}\n",
            "steps[0]: a step has exactly one key, the step kind; found transfer, expect",
        ),
        ("  - advance\n", "steps[0]: a step is a mapping with one key, got 'advance'"),
    ],
)
def test_a_step_that_is_not_one_known_key_says_what_a_step_is(step: str, message: str) -> None:
    assert message in errors_of("steps:\n" + step)


def test_a_path_that_escapes_the_nodes_base_path_fails_to_load() -> None:
    text = (
        "steps:\n"
        "  - transfer: {node: node-1, path: ../../../../tmp/x.bin}\n"  # line 6
        "  - sync: {node: node-2, path: /etc/hostname}\n"  # line 7
        "  - wait_for: {file: {node: node-1, path: a/../../b}, within: 5s}\n"  # line 8
        "  - transfer: {node: node-1, path: models/./a/../b.bin}\n"  # line 9: stays inside
        "expect:\n"
        "  files: {node-1: [ok/x.bin, /tmp/y]}\n"  # line 11
    )
    with pytest.raises(ScenarioErrors) as info:
        load_scenario("typo.yaml", HEAD + text)
    assert str(info.value).splitlines() == [
        "typo.yaml:6: steps[0].transfer.path: remote path '../../../../tmp/x.bin' on node-1 "
        "leaves the node's base_path 'data'",
        "typo.yaml:7: steps[1].sync.path: remote path '/etc/hostname' on node-2 is absolute; "
        "give it relative to the node's base_path 'data'",
        "typo.yaml:8: steps[2].wait_for.file.path: remote path 'a/../../b' on node-1 "
        "leaves the node's base_path 'data'",
        "typo.yaml:11: expect.files.node-1[1]: remote path '/tmp/y' on the node is absolute; "
        "give it relative to the node's base_path 'data'",
    ]


def test_a_node_fault_for_connections_on_an_openssh_node_is_a_load_error_naming_asyncssh() -> None:
    head = "name: t\nseed: 1\ncluster:\n  nodes: [{name: a}, {name: o, ssh_server: openssh}]\n"
    steps = "steps:\n  - fault: {kind: %s, node: %s, for_connections: 2}\n"
    with pytest.raises(ConfigError) as info:
        load_scenario("t.yaml", head + steps % ("host_key_changed", "o"))
    assert str(info.value) == (
        "t.yaml:6: steps[0].fault: o: fault host_key_changed with for_connections is only "
        "available on a node with ssh_server 'asyncssh' (it counts SSH connections as it "
        "accepts them); this node runs OpenSSH sshd: use for_operations"
    )
    load_scenario("t.yaml", head + steps % ("host_key_changed", "a"))
    load_scenario("t.yaml", head + steps % ("http_5xx", "o"))
    load_scenario("t.yaml", head + steps % ("auth_refused", "o"))  # the node decides logins
