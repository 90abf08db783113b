"""The Lambda package builds without Docker: arm64/CPython 3.13 wheels, precompiled bytecode, no SDK.

The real build downloads wheels from PyPI, so it is marked slow; the template tests skip bundling.
"""

from __future__ import annotations

import ast
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.bundling import (
    RUNTIME_PROVIDED,
    BundlingError,
    build_package,
    bundle_size,
    find_python313,
    package_modules,
)
from infra.names import LAMBDA_SRC
from tests.infra.conftest import synthesize

PACKAGE_DIR = LAMBDA_SRC / "fargate_insights"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function's asset as `cdk synth` builds it: through CDK's local bundling hook."""
    outdir = tmp_path_factory.mktemp("bundled")
    synth = synthesize(outdir, bundle=True, clusterName="demo")
    code = synth.only("AWS::Lambda::Function")["Code"]
    asset_hash = code["S3Key"].removesuffix(".zip")
    asset = outdir / f"asset.{asset_hash}"
    assert asset.is_dir(), sorted(p.name for p in outdir.iterdir())
    return asset


def test_package_modules_follow_the_handlers_imports() -> None:
    modules = {p.name for p in package_modules(PACKAGE_DIR)}
    assert {"__init__.py", "names.py", "handler.py"} <= modules
    # Local tools are not part of the function.
    assert not modules & {"__main__.py", "demo.py", "preflight.py"}
    for module in modules:  # every relative import of a shipped module is shipped too
        tree = ast.parse((PACKAGE_DIR / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                for target in targets:
                    if (PACKAGE_DIR / f"{target}.py").is_file():
                        assert f"{target}.py" in modules, (module, target)


def test_find_python313() -> None:
    python = find_python313()
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert out.stdout.strip() == "(3, 13)"


@pytest.mark.slow
def test_real_bundle(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    names = {p.relative_to(bundle).as_posix() for p in files}

    # The collector, with bytecode for the runtime's interpreter.
    expected = ["handler.py", "__init__.py", "names.py"]
    for module in expected:
        assert f"fargate_insights/{module}" in names
        stem = module.removesuffix(".py")
        assert f"fargate_insights/__pycache__/{stem}.cpython-313.pyc" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert any(
        n.startswith("aws_lambda_powertools/__pycache__/") and n.endswith(".cpython-313.pyc") for n in names
    )
    assert not any(n.endswith(".pyc") and ".cpython-313." not in n for n in names)

    # arm64 only: no x86_64 extension modules, and every .so is an aarch64 ELF.
    for so in (p for p in files if p.suffix == ".so" or ".so." in p.name):
        assert "x86_64" not in so.name
        header = so.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183, so  # EM_AARCH64

    # Nothing the runtime provides, no tests, no scripts, no local tools.
    top_level = {n.split("/")[0].split("-")[0].lower() for n in names}
    assert not top_level & RUNTIME_PROVIDED
    assert not any("/tests/" in f"/{n}" for n in names)
    assert "bin" not in top_level
    assert not names & {"fargate_insights/demo.py", "fargate_insights/__main__.py", "requirements.txt"}

    # Versions are the pinned ones.
    pinned = [line for line in (LAMBDA_SRC / "requirements.txt").read_text().splitlines() if "==" in line]
    for line in pinned:
        name, version = line.split("==")
        assert any(n.lower().startswith(f"{name.replace('-', '_')}-{version}.dist-info/") for n in names), (
            line
        )

    size = bundle_size(files)
    assert size < 50 * 1024 * 1024
    archive = bundle.parent / "asset.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(bundle).as_posix())
    with capsys.disabled():
        print(
            f"\nLambda package: {len(files)} files, {size / 1e6:.1f} MB unzipped, "
            f"{archive.stat().st_size / 1e6:.1f} MB zipped"
        )


def test_bytecode_is_used_whatever_the_files_dates(bundle: Path) -> None:
    """The CDK CLI zips every file dated 1980-01-01: bytecode that checks its source's modification time
    would be stale in Lambda, and every cold start would compile the imports again (PEP 552 flags:
    1 = hash-based, source not checked)."""
    pycs = list(bundle.rglob("*.pyc"))
    assert pycs
    flags = {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in pycs}
    assert flags == {1}


def test_the_assets_hash_covers_how_it_is_built(tmp_path: Path) -> None:
    """A change to the build (this module), to a pinned version or to a shipped module gives a new hash;
    a module the package does not ship does not."""
    from infra import bundling

    source = tmp_path / "lambda_src"
    shutil.copytree(LAMBDA_SRC, source, ignore=shutil.ignore_patterns("__pycache__"))
    before = bundling.package_hash(source)
    (source / PACKAGE_DIR.name / "demo.py").write_text("# not shipped\n")
    assert bundling.package_hash(source) == before
    (source / "requirements.txt").write_text((source / "requirements.txt").read_text() + "# pinned\n")
    after_requirements = bundling.package_hash(source)
    assert after_requirements != before
    handler = source / PACKAGE_DIR.name / "handler.py"
    handler.write_text(handler.read_text() + "\n# changed\n")
    assert bundling.package_hash(source) != after_requirements


@pytest.mark.slow
def test_bundled_handler_imports_from_the_bundle(bundle: Path, tmp_path: Path) -> None:
    """Pruning removed nothing the handler needs (boto3 comes from this venv, as from the runtime).

    zlib-ng is a compiled extension built for the function's arm64: on another machine the test checks
    that the arm64 build is in the bundle and imports that one package from this venv instead.
    """
    assert (bundle / "fargate_insights" / "handler.py").is_file()
    root = bundle
    if platform.machine() not in ("aarch64", "arm64"):
        assert sorted(p.name for p in (bundle / "zlib_ng").glob("*.so")) == [
            "zlib_ng.cpython-313-aarch64-linux-gnu.so"
        ]
        root = tmp_path / "bundle"
        shutil.copytree(bundle, root, ignore=shutil.ignore_patterns("zlib_ng"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import fargate_insights.handler as h, aws_lambda_powertools as p;"
        "assert h.__file__.startswith(sys.argv[1]) and p.__file__.startswith(sys.argv[1]), (h.__file__, p.__file__)"
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [find_python313(), "-c", code, str(root)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr


def test_pip_failure_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "fargate_insights").mkdir(parents=True)
    (source / "fargate_insights" / "__init__.py").write_text("")
    # An unparsable requirement: pip fails locally, without asking the package index anything.
    (source / "requirements.txt").write_text("aws-lambda-powertools ==== 3\n")

    with pytest.raises(BundlingError, match="pip install"):
        build_package(source, tmp_path / "out", python=sys.executable)
