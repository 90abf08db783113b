"""Builds the Lambda package on this machine: no Docker, only pip, a Python 3.13 and the package index.

The function runs Python 3.13 on arm64 (Graviton), so dependencies come as manylinux aarch64 wheels for
CPython 3.13 whatever machine synthesizes, and bytecode is compiled here because Lambda's /var/task is
read-only (without .pyc files every cold start compiles the imports again). The bytecode is checked
against nothing: the CDK CLI zips every file with a 1980 timestamp, so .pyc files that compare their
source's modification time would all be stale in Lambda and ignored.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import jsii
from aws_cdk import ILocalBundling

PACKAGE: Final = "fargate_insights"
ENTRY_MODULE: Final = "handler"
TARGET_PYTHON: Final = (3, 13)
PIP_PLATFORM: Final = "manylinux2014_aarch64"

# The Lambda runtime provides these (boto3, botocore, urllib3 and their dependencies): never ship them.
RUNTIME_PROVIDED: Final = frozenset({"boto3", "botocore", "s3transfer", "urllib3"})
# Installed by pip but of no use at run time.
_DROP_DIRS: Final = frozenset({"__pycache__", "tests", "test"})
_DROP_TOP_LEVEL: Final = frozenset({"bin"})


class BundlingError(RuntimeError):
    """The package could not be built; the message says what to install or fix."""


def find_python313() -> str:
    """A CPython 3.13 interpreter: bytecode compiled by any other version would be ignored by Lambda."""
    if sys.version_info[:2] == TARGET_PYTHON:
        return sys.executable
    candidates: list[str] = []
    on_path = shutil.which("python3.13")
    if on_path:
        candidates.append(on_path)
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        candidates.extend(str(p / "bin" / "python3") for p in sorted(pyenv.glob("3.13*"), reverse=True))
    for candidate in candidates:
        try:
            out = subprocess.run(  # noqa: S603  (fixed arguments, interpreter found above)
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return candidate
    raise BundlingError(
        "Building the Lambda package needs a Python 3.13 interpreter to compile its bytecode for the "
        "python3.13 runtime, and none was found (looked at this Python, python3.13 on PATH and "
        "~/.pyenv/versions/3.13*). Install Python 3.13 and run the CDK app again."
    )


def package_modules(package_dir: Path, entry: str = ENTRY_MODULE) -> list[Path]:
    """The package's modules the entry module imports, directly or not (CLI and demo code stay out).

    Falls back to every module when the entry module does not exist yet.
    """
    entry_path = package_dir / f"{entry}.py"
    if not entry_path.is_file():
        return sorted(package_dir.glob("*.py"))
    needed: set[str] = {"__init__"}
    pending = [entry]
    while pending:
        module = pending.pop()
        if module in needed and module != "__init__":
            continue
        needed.add(module)
        tree = ast.parse((package_dir / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            targets = [node.module] if node.module else [alias.name for alias in node.names]
            for target in targets:
                name = target.split(".")[0]
                if (package_dir / f"{name}.py").is_file() and name not in needed:
                    pending.append(name)
    return sorted(package_dir / f"{name}.py" for name in needed)


def _run(args: Sequence[str], what: str) -> None:
    """Run a build step; on failure raise with its output, since CDK would otherwise show only a code."""
    result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-4000:]
        raise BundlingError(f"{what} failed (exit {result.returncode}): {' '.join(args)}\n{detail}")


def _prune(out: Path) -> None:
    """Drop what pip installs but the function never loads: caches, tests, scripts, runtime packages."""
    for name in _DROP_TOP_LEVEL:
        shutil.rmtree(out / name, ignore_errors=True)
    for top in list(out.iterdir()):
        base = top.name.split("-")[0].lower() if top.name.endswith(".dist-info") else top.name.lower()
        if base.removesuffix(".py") in RUNTIME_PROVIDED:
            if top.is_dir():
                shutil.rmtree(top)
            else:
                top.unlink()
    for directory in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if directory.name in _DROP_DIRS and directory.exists():
            shutil.rmtree(directory)


def build_package(source_dir: Path, out: Path, python: str | None = None) -> None:
    """Install the pinned dependencies for arm64/3.13, copy the collector, prune, compile bytecode."""
    requirements = source_dir / "requirements.txt"
    package_dir = source_dir / PACKAGE
    if not requirements.is_file() or not package_dir.is_dir():
        raise BundlingError(f"{source_dir} must hold requirements.txt and {PACKAGE}/")
    interpreter = python or find_python313()
    out.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--requirement",
            str(requirements),
            "--target",
            str(out),
            "--platform",
            PIP_PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            ".".join(map(str, TARGET_PYTHON)),
            "--only-binary=:all:",
            "--no-compile",
            "--upgrade",
        ],
        "pip install of lambda_src/requirements.txt for manylinux2014_aarch64 / CPython 3.13",
    )
    _prune(out)
    target = out / PACKAGE
    target.mkdir(exist_ok=True)
    for module in package_modules(package_dir):
        shutil.copy2(module, target / module.name)
    _run(
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(out)],
        f"bytecode compilation with {interpreter}",
    )


def package_hash(source_dir: Path) -> str:
    """The asset's hash: whatever the build reads, so that any change to it builds and ships anew.

    CDK's default hashes the source directory only: a change to this module (how the package is built)
    would keep the old hash, and with it the old package in the bootstrap bucket.
    """
    digest = hashlib.sha256()
    digest.update(f"{TARGET_PYTHON}|{PIP_PLATFORM}".encode())
    inputs = [Path(__file__), source_dir / "requirements.txt", *package_modules(source_dir / PACKAGE)]
    for path in inputs:
        digest.update(path.relative_to(path.parent.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def bundle_size(paths: Iterable[Path]) -> int:
    """Total size in bytes of the regular files given (for reports and tests)."""
    return sum(p.stat().st_size for p in paths if p.is_file())


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """CDK's local bundling hook: builds into the asset's output directory instead of a container."""

    def __init__(self, source_dir: Path) -> None:
        """Remember where lambda_src lives; CDK passes only the output directory."""
        self._source_dir = source_dir

    def try_bundle(self, output_dir: str, options: object) -> bool:
        """Always bundle locally: returning False would make CDK fall back to Docker.

        jsii calls this with the bundling options as one positional struct, whatever the generated
        Protocol's keyword signature says (hence the cast where the bundler is passed to CDK).
        """
        del options  # the image and command exist only for Docker, which is never used
        build_package(self._source_dir, Path(output_dir))
        return True
