"""`raykit sandbox`: throw-away local test hosts.

A sandbox is a set of podman containers that behave like small lab hosts: each runs systemd as
PID 1 and sshd, has its own hostname and a fixed IP on its own podman network, and is reached by
Ansible over SSH as `admin`, a passwordless sudoer (as a real lab's Ansible user would be).

What a sandbox called NAME consists of, all created and removed by name or label only:

- podman network NAME (netavark, label ``raykit.sandbox=NAME``) with a fixed /24 subnet:
  ``10.89.10.0/24`` for the default name ``raykit-sandbox``; for any other name the third octet
  is ``11 + sha256(NAME) % 240`` (11..250), so the subnet is deterministic, never the default
  one, and clear of podman's own automatic subnets (``10.89.0.0/24``, ``10.89.1.0/24``, ...).
  A name whose subnet is already in use by another network is refused with a clear error.
- containers ``NAME-node1 .. NAME-nodeN`` (label ``raykit.sandbox=NAME``), hostname = container
  name, IPs ``.11``, ``.12``, ... of that subnet;
- ``<repo>/.raykit/NAME/``: the SSH key pair (``id_ed25519``), ``inventory.yml`` and
  ``state.json``.

Images ``localhost/raykit-sandbox:<suite>`` (bookworm = Debian 12, trixie = Debian 13) are built
locally with debootstrap from Debian's mirror (no image registry needed) and kept as a cache;
their label ``raykit.sandbox.recipe`` is a hash of the recipe, so a changed recipe rebuilds.

The package's modules, one job each (this module re-exports what other code uses):

- ``validate``: the rules for names, distros, CPU limits and host counts (library and CLI);
- ``host``: the control node made ready (podman installed, containers.conf drop-in, netavark's
  firewall driver);
- ``images``: the images (recipe hash, build, import, prune);
- ``state``: the plan of hosts, the state directory and file, and the inventories;
- ``containers``: the network, the containers, the SSH key, the waits for boot and SSH;
- ``lifecycle``: ``up``, ``down`` and ``status``;
- ``cli``: ``raykit sandbox ...``'s argument parsers and commands;
- ``_common`` and ``_exec``: what they all share (names, errors, locks; running commands).

The private helpers the tests call are re-exported too; a test that replaces a helper patches it
in the module that looks it up (e.g. ``raykit.sandbox.host._run``), not here.
"""

from __future__ import annotations

from ._common import (
    DEFAULT_NAME,
    DISTROS,
    LABEL,
    MAX_HOSTS,
    SSH_USER,
    SandboxError,
    console,
    repo_root,
)
from ._exec import _podman as _podman
from .cli import register, up_args
from .containers import SSH_TIMEOUT, ssh_ok
from .containers import _run_container as _run_container
from .containers import _ssh_args as _ssh_args
from .host import (
    CONTAINERS_CONF_DROPIN,
    CONTAINERS_CONF_FILES,
    DEFAULT_FIREWALL_DRIVER,
    FIREWALL_PACKAGES,
    HOST_PACKAGES,
    NPROC_MAX,
    containers_conf_dropin,
    ensure_podman,
    netavark_firewall_driver,
    verify_podman,
)
from .host import _dropin_ok as _dropin_ok
from .images import (
    DATA_DIR,
    DEFAULT_MIRROR,
    IMAGE_PACKAGES,
    IMAGE_REPO,
    build_image,
    ensure_images,
    image_is_current,
    image_name,
    recipe_hash,
)
from .lifecycle import HostStatus, down, status, up
from .state import (
    CPUS_PER_CORE,
    DEFAULT_SUBNET,
    FIRST_HOST_OCTET,
    OBJECT_STORE_BYTES,
    HostSpec,
    announced_cpus,
    container_name,
    default_distros,
    host_ip,
    host_vars,
    inventory_path,
    key_path,
    plan_hosts,
    play_inventory,
    read_state,
    render_inventory,
    sandbox_vars,
    state_dir,
    subnet_for,
    subset_inventory,
)
from .state import _write_state as _write_state
from .validate import (
    resolve_cpus,
    resolve_distros,
    validate_cpus,
    validate_distros,
    validate_host_count,
    validate_name,
)

__all__ = [
    "CONTAINERS_CONF_DROPIN",
    "CONTAINERS_CONF_FILES",
    "CPUS_PER_CORE",
    "DATA_DIR",
    "DEFAULT_FIREWALL_DRIVER",
    "DEFAULT_MIRROR",
    "DEFAULT_NAME",
    "DEFAULT_SUBNET",
    "DISTROS",
    "FIREWALL_PACKAGES",
    "FIRST_HOST_OCTET",
    "HOST_PACKAGES",
    "IMAGE_PACKAGES",
    "IMAGE_REPO",
    "LABEL",
    "MAX_HOSTS",
    "NPROC_MAX",
    "OBJECT_STORE_BYTES",
    "SSH_TIMEOUT",
    "SSH_USER",
    "HostSpec",
    "HostStatus",
    "SandboxError",
    "announced_cpus",
    "build_image",
    "console",
    "container_name",
    "containers_conf_dropin",
    "default_distros",
    "down",
    "ensure_images",
    "ensure_podman",
    "host_ip",
    "host_vars",
    "image_is_current",
    "image_name",
    "inventory_path",
    "key_path",
    "netavark_firewall_driver",
    "plan_hosts",
    "play_inventory",
    "read_state",
    "recipe_hash",
    "register",
    "render_inventory",
    "repo_root",
    "resolve_cpus",
    "resolve_distros",
    "sandbox_vars",
    "ssh_ok",
    "state_dir",
    "status",
    "subnet_for",
    "subset_inventory",
    "up",
    "up_args",
    "validate_cpus",
    "validate_distros",
    "validate_host_count",
    "validate_name",
    "verify_podman",
]
