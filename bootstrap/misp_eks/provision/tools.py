"""eksctl, flux and gpg: found on PATH, version-checked, run with timeouts.

Each tool is looked up on the PATH of the environment the bootstrap was started with, so tests can
put recording stand-ins first. Output of long commands is forwarded line by line to the progress
display; a failure is reported with the command and its last error line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from misp_eks.provision.errors import ToolError, ToolFailed, WaitTimeout

Version = tuple[int, int, int]
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> Version | None:
    found = _VERSION.search(text)
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


def minor_of(release: str) -> tuple[int, int]:
    found = parse_version(release)
    if found is None:
        raise ValueError(f"not a release version: {release}")
    return found[0], found[1]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    minimum: Version
    version_args: tuple[str, ...]
    install: str
    why: str
    parse: Callable[[str], Version | None] = parse_version
    series: tuple[int, int] | None = None
    """Only this major.minor will do (a newer minor is refused too), because of ``series_reason``."""
    series_reason: str = ""
    recommended: str | None = None
    """The release to name when the found one will not do."""


# The Flux release the cluster runs (flux bootstrap --version). A flux CLI that is a release installs
# only releases of its own major.minor (a pre-release CLI any release) and its own release from the
# manifests it embeds (fluxcd/flux2 v2.9.4 cmd/flux/version_utils.go getVersion, internal/utils/utils.go
# CompatibleVersion).
# renovate: datasource=github-releases depName=fluxcd/flux2
FLUX_DISTRIBUTION = "v2.9.4"

# The first eksctl release that knows each Kubernetes minor (its Version1_<minor> constant in
# eksctl-io/eksctl pkg/apis/eksctl.io/v1alpha5/types.go, first present at that tag). The eksctl minimum
# must know every clusters/*/cluster.yaml metadata.version: a minor missing here has to be added, with
# the eksctl release that brought it, before a cluster moves to it.
EKSCTL_FOR_KUBERNETES: dict[tuple[int, int], Version] = {
    (1, 30): (0, 169, 0),
    (1, 31): (0, 179, 0),
    (1, 32): (0, 191, 0),
    (1, 33): (0, 209, 0),
    (1, 34): (0, 222, 0),
    (1, 35): (0, 222, 0),
}

# Minimum versions. eksctl: the first release that knows the clusters' Kubernetes (EKSCTL_FOR_KUBERNETES;
# cluster.yaml validates against its schema); it has create cluster --write-kubeconfig
# (pkg/ctl/create/cluster.go). flux: the minor of FLUX_DISTRIBUTION, which serves HelmRelease
# spec.install.strategy (helm-controller 1.4, Flux 2.7) the manifests use; GnuPG 2.2 for
# --pinentry-mode loopback.
EKSCTL = ToolSpec(
    "eksctl", (0, 222, 0), ("version",), "https://eksctl.io/installation/", "creates and deletes the cluster"
)


FLUX = ToolSpec(
    "flux",
    (*minor_of(FLUX_DISTRIBUTION), 0),
    ("version", "--client"),
    f"https://github.com/fluxcd/flux2/releases/tag/{FLUX_DISTRIBUTION}",
    "bootstraps GitOps",
    series=minor_of(FLUX_DISTRIBUTION),
    series_reason=f"flux bootstrap from a CLI release installs only Flux releases of the CLI's own minor, and the "
    f"bootstrap installs Flux {FLUX_DISTRIBUTION}",
    recommended=FLUX_DISTRIBUTION.removeprefix("v"),
)
GPG = ToolSpec("gpg", (2, 2, 0), ("--version",), "your package manager (gnupg)", "generates MISP's OpenPGP key")
ALL_TOOLS = (EKSCTL, FLUX, GPG)
VERSION_TIMEOUT_SECONDS = 30


def wanted(spec: ToolSpec) -> str:
    """What to install, in words: ``flux 2.9.4 (any 2.9.x)`` or ``eksctl >= 0.222.0``."""
    if spec.series is not None:
        series = ".".join(map(str, spec.series))
        return f"{spec.name} {spec.recommended or series + '.x'} (any {series}.x)"
    return f"{spec.name} >= {format_version(spec.minimum)}"


def version_problem(spec: ToolSpec, version: Version) -> str | None:
    """Why ``version`` of ``spec`` will not do, or None."""
    if spec.series is not None and version[:2] != spec.series:
        return f"will not do ({spec.series_reason}): install {wanted(spec)} from {spec.install}"
    if version < spec.minimum:
        return f"is too old: {format_version(spec.minimum)} or newer is needed ({spec.install})"
    return None


@dataclass(frozen=True)
class Found:
    spec: ToolSpec
    path: Path
    version: Version


@dataclass
class Tools:
    """Runs the external tools; ``environ`` is the environment they see (PATH included)."""

    environ: Mapping[str, str]
    on_line: Callable[[str], None] = lambda _line: None
    _found: dict[str, Found] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def locate(self, spec: ToolSpec) -> Path | None:
        found = shutil.which(spec.name, path=self.environ.get("PATH", os.defpath))
        return Path(found) if found else None

    def require(self, spec: ToolSpec) -> Found:
        """The tool, checked once per run: a one-line error if it is missing or too old."""
        with self._lock:
            if spec.name in self._found:
                return self._found[spec.name]
        path = self.locate(spec)
        if path is None:
            raise ToolError(f"{spec.name} not found on PATH ({spec.why}): install {wanted(spec)} from {spec.install}")
        output = self._output([str(path), *spec.version_args], VERSION_TIMEOUT_SECONDS)
        version = spec.parse(output)
        if version is None:
            raise ToolError(f"cannot tell the version of {path} from `{' '.join(spec.version_args)}`: {output[:80]!r}")
        problem = version_problem(spec, version)
        if problem:
            raise ToolError(f"{spec.name} {format_version(version)} at {path} {problem}")
        found = Found(spec, path, version)
        with self._lock:
            self._found[spec.name] = found
        return found

    def _output(self, command: list[str], timeout: float) -> str:
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, env=dict(self.environ), check=False
            )
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"`{' '.join(command)}`", timeout) from None
        except OSError as error:
            raise ToolError(f"cannot run {command[0]}: {error.strerror}") from None
        if result.returncode != 0:
            raise ToolFailed(f"`{' '.join(command)}` failed (exit {result.returncode}): {_last_line(result.stderr)}")
        return result.stdout + result.stderr

    def run(
        self,
        spec: ToolSpec,
        args: Sequence[str],
        *,
        timeout: float,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        interactive: bool = False,
        what: str | None = None,
    ) -> str:
        """Run ``spec`` with ``args``; returns stdout.

        ``stream`` forwards every output line to ``on_line``; ``interactive`` lets the tool read the
        operator's terminal (for its own confirmation prompts).
        """
        found = self.require(spec)
        command = [str(found.path), *args]
        label = what or f"`{spec.name} {' '.join(args)}`"
        environment = {**self.environ, **(env or {})}
        if interactive:
            return self._interactive(command, environment, timeout, label)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
        except OSError as error:
            raise ToolError(f"cannot run {found.path}: {error.strerror}") from None
        stdout: list[str] = []
        tail: deque[str] = deque(maxlen=20)

        def pump(source: object, sink: Callable[[str], None]) -> None:
            for line in source:  # type: ignore[attr-defined]
                sink(line)

        def keep_out(line: str) -> None:
            stdout.append(line)
            if stream:
                self.on_line(f"{spec.name}: {line.rstrip()}")

        def keep_err(line: str) -> None:
            tail.append(line)
            if stream:
                self.on_line(f"{spec.name}: {line.rstrip()}")

        readers = [
            threading.Thread(target=pump, args=(process.stdout, keep_out), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, keep_err), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            if stdin is not None and process.stdin is not None:
                process.stdin.write(stdin)
                process.stdin.close()
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise WaitTimeout(label, timeout, _last_line("".join(tail))) from None
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            for reader in readers:
                reader.join(timeout=5)
        if process.returncode != 0:
            raise ToolFailed(
                f"{label} failed (exit {process.returncode}): {_last_line(''.join(tail) or ''.join(stdout))}"
            )
        return "".join(stdout)

    @staticmethod
    def _interactive(command: list[str], environment: dict[str, str], timeout: float, label: str) -> str:
        """Run with the operator's terminal, for the tool's own prompts; nothing is captured."""
        try:
            result = subprocess.run(command, env=environment, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(label, timeout) from None
        except OSError as error:
            raise ToolError(f"cannot run {command[0]}: {error.strerror}") from None
        if result.returncode != 0:
            raise ToolFailed(f"{label} failed (exit {result.returncode}): see its output above")
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
