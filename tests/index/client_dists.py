"""The distributions the client matrix installs (tests/index/test_clients.py), built by hand.

``from-source`` is an sdist only: installing it means building it, and its build backend,
``tiny-backend``, is itself a wheel on the index (a real PEP 517 backend in one module that
writes the wheel with zipfile). Its wheel needs ``chain-top``, which needs ``chain-base``:
    from-source (sdist) → chain-top (wheel) → chain-base (wheel);  build: tiny-backend (wheel)
"""

import base64
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

BACKEND_SOURCE = '''\
"""A PEP 517 build backend in one module: the wheel holds the sdist's PKG-INFO as METADATA
and the package directory named after the project."""

import base64
import hashlib
import zipfile
from pathlib import Path

WHEEL = (b"Wheel-Version: 1.0\\nGenerator: tiny-backend\\nRoot-Is-Purelib: true\\n"
         b"Tag: py3-none-any\\n")


def _fields(metadata):
    head = metadata.split("\\n\\n", 1)[0]
    return dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    metadata = Path("PKG-INFO").read_text()
    fields = _fields(metadata)
    dist = fields["Name"].replace("-", "_")
    info = f"{dist}-{fields['Version']}.dist-info"
    files = {p.as_posix(): p.read_bytes() for p in sorted(Path(dist).rglob("*.py"))}
    files[f"{info}/METADATA"] = metadata.encode()
    files[f"{info}/WHEEL"] = WHEEL
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{dist}-{fields['Version']}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name
'''

# What ``from_source.answer()`` returns once the whole chain is installed and importable.
ANSWER = "from-source 1.0 built by tiny-backend 1.0, over chain-top 1.0 over chain-base 1.0"


@dataclass(frozen=True)
class Dist:
    filename: str
    content: bytes


def _metadata(name: str, version: str, requires: list[str]) -> str:
    # 2.2 with no Dynamic field: the sdist's PKG-INFO is authoritative (PEP 643), as a
    # backend-built sdist says, so resolvers may read it without building.
    lines = ["Metadata-Version: 2.2", f"Name: {name}", f"Version: {version}",
             f"Summary: {name} for the client matrix", "Requires-Python: >=3.8"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(name: str, version: str, module: str, requires: list[str]) -> Dist:
    """A pure-Python wheel with one package ``{name}`` whose ``__init__`` is ``module``."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": module.encode(),
        f"{info}/METADATA": _metadata(name, version, requires).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: relatch-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return Dist(f"{dist}-{version}-py3-none-any.whl", buffer.getvalue())


def sdist(name: str, version: str, module: str, requires: list[str], backend: str) -> Dist:
    """An sdist built only by ``backend`` (a project name that is also its module name)."""
    dist = name.replace("-", "_")
    root = f"{dist}-{version}"
    pyproject = (f'[build-system]\nrequires = ["{backend}"]\n'
                 f'build-backend = "{backend.replace("-", "_")}"\n')
    members = {
        f"{root}/PKG-INFO": _metadata(name, version, requires).encode(),
        f"{root}/pyproject.toml": pyproject.encode(),
        f"{root}/{dist}/__init__.py": module.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return Dist(f"{root}.tar.gz", buffer.getvalue())


def backend_wheel() -> Dist:
    return wheel("tiny-backend", "1.0", BACKEND_SOURCE, [])


def chain() -> list[Dist]:
    """Everything ``from-source`` needs, the backend included, and the sdist itself."""
    base = wheel("chain-base", "1.0", 'NAME = "chain-base 1.0"\n', [])
    top = wheel("chain-top", "1.0",
                'from chain_base import NAME as BASE\nNAME = f"chain-top 1.0 over {BASE}"\n',
                ["chain-base>=1.0"])
    source = sdist("from-source", "1.0", (
        "from importlib.metadata import distribution\n"
        "from chain_top import NAME as TOP\n\n\n"
        "def answer():\n"
        '    built = distribution("from-source").read_text("WHEEL").split("Generator: ")[1]\n'
        '    return f"from-source 1.0 built by {built.split()[0]} 1.0, over {TOP}"\n'
    ), ["chain-top"], "tiny-backend")
    return [backend_wheel(), base, top, source]


def write(dists: list[Dist], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / dist.filename for dist in dists]
    for path, dist in zip(paths, dists, strict=True):
        path.write_bytes(dist.content)
    return paths
