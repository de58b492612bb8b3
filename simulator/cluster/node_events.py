"""Node fault reports followed over the nodes' admin API, for nodes in other processes or
containers (the Docker backend): what ``NodeFaults.on_fired`` gives in process.

One thread per node long-polls ``GET /faults/events?since=N&wait=S``: a request returns as
soon as the node reports something or after ``wait`` seconds, so an idle node costs one
request per ``wait`` and a report arrives at once. Reports made before ``start`` are skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from netfault.simulator.cluster.switchboard import AdminEndpoint, RemoteFaultError, admin_request

WAIT = 1.0  # seconds one request waits for a report
RETRY = 0.5  # seconds before asking again after a failed request
NodeListener = Callable[[str, dict[str, object]], None]


class NodeEventPoller:
    """Calls ``listener(node, record)`` from a thread per node, in each node's order."""

    def __init__(
        self, endpoints: dict[str, AdminEndpoint], listener: NodeListener, wait: float = WAIT
    ) -> None:
        self.endpoints = endpoints
        self.listener = listener
        self.wait = wait
        self.dropped = 0  # reports a node no longer kept by the time they were asked for
        self.errors: list[RemoteFaultError] = []  # the last few, for a report
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Follow every node from its reports' current end on."""
        cursors = {node: self._fetch(node, 0, 0.0)[1] for node in self.endpoints}
        for node, cursor in cursors.items():
            thread = threading.Thread(
                target=self._follow, args=(node, cursor), name=f"node-events-{node}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _fetch(self, node: str, since: int, wait: float) -> tuple[list[dict[str, object]], int]:
        path = f"/faults/events?since={since}&wait={wait:g}"
        answer = admin_request(node, self.endpoints[node], "GET", path, timeout=wait + 10)
        self.dropped += int(answer.get("dropped", 0))
        return list(answer["events"]), int(answer["next"])

    def _follow(self, node: str, cursor: int) -> None:
        while not self._stop.is_set():
            try:
                records, cursor = self._fetch(node, cursor, self.wait)
            except RemoteFaultError as exc:
                self.errors = [*self.errors[-9:], exc]
                self._stop.wait(RETRY)
                continue
            for record in records:
                if not self._stop.is_set():
                    self.listener(node, {k: v for k, v in record.items() if k != "n"})

    def stop(self) -> None:
        """Stop following; returns once every thread has (within one ``wait``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.wait + 15)
        self._threads = []
