# syntax=docker/dockerfile:1
# A fake cluster node: the same FakeNode that LocalCluster runs (asyncssh SSH server whose exec
# requests run as real processes, or with `--ssh-server openssh` the real sshd, run as the
# image's user; HTTP agent, admin API for node-level faults), plus the tools the engine's
# transports run on the node (rsync, base64/sha256sum, ssh client, prlimit).
# Build from the repository root:
#   docker build -f docker/node.Dockerfile -t netfault-node:0.1.0 .
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv openssh-client openssh-server rsync coreutils util-linux \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# uid 1000 matches the owner DockerCluster gives the secrets it copies into /etc/netfault
RUN useradd --create-home --uid 1000 --user-group --shell /bin/sh netfault \
    && install -d -o netfault -g netfault -m 0755 /etc/netfault

COPY pyproject.toml README.md /src/
COPY engine /src/engine
COPY simulator /src/simulator
RUN python3 -m venv /opt/netfault \
    && /opt/netfault/bin/pip install --no-cache-dir /src \
    && rm -rf /src

USER netfault
WORKDIR /home/netfault
# 22: SSH, 8080: HTTP agent (also the p2p route), 8081: admin API (/faults, never faulted)
EXPOSE 22 8080 8081
ENTRYPOINT ["/opt/netfault/bin/python", "-m", "netfault.simulator.node.serve", "--host", "0.0.0.0", "--allow-remote", "--ssh-port", "22", "--http-port", "8080", "--admin-port", "8081", "--p2p-port", "-1", "--home", "/home/netfault", "--authorized-key-file", "/etc/netfault/authorized_keys", "--token-file", "/etc/netfault/token", "--host-key-dir", "/etc/netfault"]
CMD ["--name", "node"]
