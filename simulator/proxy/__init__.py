"""Toxiproxy-compatible fault proxy: same HTTP API and toxics, plus `corrupt` and seeding.

server = ProxyServer(port=0, seed=1).start_in_thread()   # own thread and loop
...                                                       # toxiproxy-python on server.api_url
server.stop()
"""

from netfault.simulator.proxy.api import TOXIPROXY_VERSION, make_app
from netfault.simulator.proxy.collection import ProxyCollection
from netfault.simulator.proxy.errors import ApiError, ProxyError, ServerStartError
from netfault.simulator.proxy.proxy import Proxy
from netfault.simulator.proxy.schema import ProxyConfig, make_toxic
from netfault.simulator.proxy.server import ProxyServer
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.toxics import REGISTRY as TOXIC_TYPES
from netfault.simulator.proxy.toxics import Toxic

FaultProxyServer = ProxyServer

__all__ = [
    "TOXIC_TYPES",
    "TOXIPROXY_VERSION",
    "ApiError",
    "FaultProxyServer",
    "Proxy",
    "ProxyCollection",
    "ProxyConfig",
    "ProxyError",
    "ProxyServer",
    "ServerStartError",
    "Toxic",
    "ToxicSpec",
    "make_app",
    "make_toxic",
]
