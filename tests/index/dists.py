"""Real distribution files for tests: wheels pip and uv can install, and sdists.

Built by hand (zipfile, tarfile) so tests need no build backend and no network.
"""

import base64
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, field


@dataclass
class Dist:
    filename: str
    content: bytes
    metadata: str  # the METADATA / PKG-INFO text inside
    fields: dict[str, str | list[str]] = field(default_factory=dict)  # upload form fields

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def blake2_256(self) -> str:
        return hashlib.blake2b(self.content, digest_size=32).hexdigest()


def _metadata(
    name: str,
    version: str,
    *,
    summary: str,
    requires_python: str,
    project_urls: dict[str, str],
    author_email: str,
    description: str,
    requires_dist: tuple[str, ...] = (),
) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
        f"Author-email: {author_email}",
    ]
    lines += [f"Project-URL: {label}, {url}" for label, url in project_urls.items()]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {requirement}" for requirement in requires_dist]
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + description + "\n"


def _form_fields(metadata: str, name: str, version: str, filetype: str, pyversion: str,
                 requires_python: str, project_urls: dict[str, str], summary: str,
                 author_email: str, description: str,
                 requires_dist: tuple[str, ...] = ()) -> dict[str, str | list[str]]:
    fields: dict[str, str | list[str]] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": filetype,
        "pyversion": pyversion,
        "summary": summary,
        "author_email": author_email,
        "description": description,
        "description_content_type": "text/markdown",
        "requires_python": requires_python,
        "project_urls": [f"{label}, {url}" for label, url in project_urls.items()],
    }
    if requires_dist:  # twine sends the field only when there are requirements
        fields["requires_dist"] = list(requires_dist)
    return fields


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(
    name: str = "sample-pkg",
    version: str = "1.0",
    *,
    requires_python: str = ">=3.8",
    project_urls: dict[str, str] | None = None,
    summary: str = "A sample package",
    author_email: str = "alice@example.org",
    description: str = "# Sample\n\nA sample package.",
    module_source: str = "VALUE = 42\n",
    requires_dist: tuple[str, ...] = (),
) -> Dist:
    """A pure-Python wheel ``{dist}-{version}-py3-none-any.whl`` with one module."""
    urls = project_urls if project_urls is not None else {
        "Source": f"https://git.example.org/{name}"
    }
    dist = name.replace("-", "_").replace(".", "_")
    metadata = _metadata(name, version, summary=summary, requires_python=requires_python,
                         project_urls=urls, author_email=author_email, description=description,
                         requires_dist=requires_dist)
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": module_source.encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: relatch-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    fields = _form_fields(metadata, name, version, "bdist_wheel", "py3", requires_python, urls,
                          summary, author_email, description, requires_dist)
    return Dist(f"{dist}-{version}-py3-none-any.whl", buffer.getvalue(), metadata, fields)


def build_sdist(
    name: str = "sample-pkg",
    version: str = "1.0",
    *,
    requires_python: str = ">=3.8",
    project_urls: dict[str, str] | None = None,
    summary: str = "A sample package",
    author_email: str = "alice@example.org",
    description: str = "# Sample\n\nA sample package.",
) -> Dist:
    """A source distribution ``{dist}-{version}.tar.gz`` with PKG-INFO and a pyproject.toml."""
    urls = project_urls if project_urls is not None else {
        "Source": f"https://git.example.org/{name}"
    }
    dist = name.replace("-", "_").replace(".", "_")
    metadata = _metadata(name, version, summary=summary, requires_python=requires_python,
                         project_urls=urls, author_email=author_email, description=description)
    root = f"{dist}-{version}"
    members = {
        f"{root}/PKG-INFO": metadata.encode(),
        f"{root}/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{root}/{dist}/__init__.py": b"VALUE = 42\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    fields = _form_fields(metadata, name, version, "sdist", "source", requires_python, urls,
                          summary, author_email, description)
    return Dist(f"{root}.tar.gz", buffer.getvalue(), metadata, fields)
