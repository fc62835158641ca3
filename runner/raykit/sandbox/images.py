"""The sandbox hosts' images ``localhost/raykit-sandbox:<suite>``: their recipe hash, the build
(debootstrap into a temporary root file system, customised, ``tar | podman import``), and
pruning the builds they replace."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._common import DISTROS, LABEL, SSH_USER, SandboxError, _locked, console
from ._exec import _have, _is_root, _podman, _run
from .host import _apt_install
from .validate import validate_distros

IMAGE_REPO = "localhost/raykit-sandbox"

# The image recipe. Bump _RECIPE_REVISION whenever build_image() changes what it puts in the
# image or _run_container() how a container runs; the recipe hash (a label of the image and of
# each container) covers this, the package list and data/sandbox/rootfs/.
_RECIPE_REVISION = 2
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "python3-packaging",
    "sudo",
    "iproute2",
    "procps",
    "ca-certificates",
    # What a Debian host has by default, and what raykit's firewall needs.
    "nftables",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "sandbox"


def image_name(distro: str) -> str:
    return f"{IMAGE_REPO}:{distro}"


def _overlay_files() -> list[Path]:
    root = DATA_DIR / "rootfs"
    return sorted(p for p in root.rglob("*") if p.is_file())


def recipe_hash(distro: str) -> str:
    """A content hash of everything that goes into the image for ``distro``."""
    h = hashlib.sha256()
    h.update(f"revision={_RECIPE_REVISION}\nsuite={distro}\n".encode())
    h.update(f"packages={','.join(IMAGE_PACKAGES)}\nuser={SSH_USER}\n".encode())
    root = DATA_DIR / "rootfs"
    for path in _overlay_files():
        h.update(f"file={path.relative_to(root).as_posix()}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _image_recipe(image: str) -> str | None:
    """The recipe label of a local image, "" when unlabelled, None when the image is missing."""
    proc = _run(["podman", "image", "inspect", "--format", "json", image], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    if not data:
        return None
    labels = (data[0].get("Config") or {}).get("Labels") or data[0].get("Labels") or {}
    return str(labels.get(f"{LABEL}.recipe", ""))


def image_is_current(distro: str) -> bool:
    return _image_recipe(image_name(distro)) == recipe_hash(distro)


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    found = []
    prefix = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(Path(mount_point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _remove_build_dir(path: Path) -> None:
    """Remove a build directory; first unmount whatever a failed debootstrap left mounted in it
    (never delete through a mount: /proc or a bind-mounted /dev would hurt the host)."""
    for mount_point in _mounts_under(path):
        _run(["umount", "--lazy", str(mount_point)], check=False)
    left = _mounts_under(path)
    if left:
        console.print(
            f"[red]sandbox: not deleting {path}: still mounted: {', '.join(map(str, left))}[/]"
        )
        return
    shutil.rmtree(path, ignore_errors=True)


def _customize_rootfs(rootfs: Path) -> None:
    """Everything build_image() does between debootstrap and import."""
    # Our files (ssh.service and sshd drop-ins, sudoers) over the root file system.
    overlay_root = DATA_DIR / "rootfs"
    for src in _overlay_files():
        rel = src.relative_to(overlay_root)
        dest = rootfs / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o440 if rel.parts[:2] == ("etc", "sudoers.d") else 0o644)
    _run(["chroot", str(rootfs), "visudo", "-c", "-q", "-f", "/etc/sudoers.d/raykit-admin"])
    # The Ansible user: a passwordless sudoer whose authorized_keys `up` fills in.
    chroot = ["chroot", str(rootfs)]
    _run([*chroot, "useradd", "--create-home", "--shell", "/bin/bash", SSH_USER])
    _run(
        [*chroot, *f"install -d -m 0700 -o {SSH_USER} -g {SSH_USER} /home/{SSH_USER}/.ssh".split()]
    )
    # No shared secrets or identities in the image: host keys come at first boot, and an
    # empty machine-id makes systemd give every container its own.
    for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc" / "machine-id").write_text("")
    dbus_id = rootfs / "var" / "lib" / "dbus" / "machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    # Apt caches and lists (hosts run `apt-get update` before installing anything).
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file() and path.name != "lock":
                path.unlink()
    for log in ("var/log/bootstrap.log", "var/log/dpkg.log", "var/log/alternatives.log"):
        (rootfs / log).unlink(missing_ok=True)


def build_image(distro: str, *, mirror: str | None = None) -> str:
    """Build ``localhost/raykit-sandbox:<distro>`` from Debian's mirror; returns the image ID.

    debootstrap (minbase + systemd, sshd, python3, sudo) into a temporary directory, customise
    it (see _customize_rootfs), then ``tar | podman import``. The temporary directory is
    removed even when a step fails. Needs root (debootstrap, chroot). ``mirror`` (or the
    environment variable RAYKIT_DEBIAN_MIRROR) replaces http://deb.debian.org/debian.
    """
    validate_distros([distro])
    if not _is_root():
        raise SandboxError("building the sandbox image needs root (debootstrap, chroot)")
    if not _have("debootstrap"):
        _apt_install(["debootstrap"])
    mirror = mirror or os.environ.get("RAYKIT_DEBIAN_MIRROR") or DEFAULT_MIRROR
    image = image_name(distro)
    recipe = recipe_hash(distro)
    old_id = _podman("image", "ls", "-q", "--no-trunc", image, check=False).strip()
    old_id = old_id.splitlines()[0].removeprefix("sha256:") if old_id else ""
    build_dir = Path(tempfile.mkdtemp(prefix=f"raykit-sandbox-{distro}-"))
    try:
        rootfs = build_dir / "rootfs"
        log = build_dir / "debootstrap.log"
        include = ",".join(IMAGE_PACKAGES)
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={include}",
            distro,
            str(rootfs),
            mirror,
        ]
        with log.open("w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            inner = rootfs / "debootstrap" / "debootstrap.log"
            if inner.is_file():
                tail += "\n--- debootstrap/debootstrap.log ---\n" + "\n".join(
                    inner.read_text(errors="replace").splitlines()[-25:]
                )
            raise SandboxError(f"debootstrap {distro} failed (exit {proc.returncode}):\n{tail}")
        _customize_rootfs(rootfs)
        image_id = _import_rootfs(rootfs, image, distro, recipe)
    finally:
        _remove_build_dir(build_dir)
    if old_id and old_id != image_id:
        _prune_old_images()
    return image_id


def _prune_old_images() -> None:
    """Remove earlier builds of our images (untagged, labelled by us) that no container uses."""
    out = _podman(
        "images",
        "--quiet",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        f"label={LABEL}.recipe",
        check=False,
    )
    for image_id in dict.fromkeys(out.split()):
        _podman("image", "rm", image_id, check=False)  # fails, harmlessly, while still in use


def _import_rootfs(rootfs: Path, image: str, distro: str, recipe: str) -> str:
    changes = [
        'CMD ["/sbin/init"]',
        "STOPSIGNAL SIGRTMIN+3",
        f"LABEL {LABEL}.recipe={recipe}",
        f"LABEL {LABEL}.distro={distro}",
    ]
    podman_cmd = ["podman", "import", "--quiet"]
    for change in changes:
        podman_cmd += ["--change", change]
    podman_cmd += ["--message", f"raykit sandbox {distro} ({recipe})", "-", image]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    try:
        importer = subprocess.run(
            podman_cmd, stdin=tar.stdout, capture_output=True, text=True, check=False
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or importer.returncode != 0:
        raise SandboxError(
            f"importing {image} failed (tar exit {tar_rc}, podman exit {importer.returncode}):\n"
            f"{importer.stderr.strip()}"
        )
    return importer.stdout.strip().removeprefix("sha256:")


def ensure_images(distros: Sequence[str], *, parallel: bool = True) -> list[str]:
    """Build the images for ``distros`` that are missing or from an older recipe.

    Returns the distros built. Two builds run at once by default (debootstrap mostly waits
    on the network).
    """
    wanted = list(dict.fromkeys(distros))
    if all(image_is_current(d) for d in wanted):
        return []
    with _locked("images"):
        todo = [d for d in wanted if not image_is_current(d)]  # another process may have built
        _build_images(todo, parallel=parallel)
    return todo


def _build_images(todo: Sequence[str], *, parallel: bool) -> None:
    if not todo:
        return

    def build(distro: str) -> None:
        started = time.monotonic()
        console.print(
            f"[bold]sandbox:[/] building {image_name(distro)} ({DISTROS[distro]}, debootstrap; "
            "about a minute)"
        )
        build_image(distro)
        console.print(
            f"[bold]sandbox:[/] built {image_name(distro)} in {time.monotonic() - started:.0f} s"
        )

    if parallel and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for future in [pool.submit(build, d) for d in todo]:
                future.result()
    else:
        for distro in todo:
            build(distro)
