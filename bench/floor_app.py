"""gunicorn's own ceiling for bench/index_pages.py: the corpus's pages with nothing behind them.

A WSGI application that answers ``/simple/``, ``/simple/<project>/`` (HTML, or PEP 691 JSON by
``Accept``) and ``/files/<name>`` from pages built once, in memory, when the worker starts: no
Django, no database, no cache lookup. Run under the same gunicorn settings as ``relatch serve``
(the ``gunicorn-floor`` server of index_pages.py), it measures what the server alone costs on
this machine; Relatch's figures beside it say how far the application's own work is above
that floor. ``BENCH_FLOOR_CORPUS`` names the corpus directory.
"""

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def _build(corpus: Path) -> dict[tuple[str, bool], tuple[str, bytes]]:
    """(path, wants JSON) -> (content type, body) for every page and file of the corpus."""
    files: dict[str, list[dict[str, Any]]] = {}
    for entry in json.loads((corpus / "manifest.json").read_text())["files"]:
        if entry["served"]:
            files.setdefault(entry["normalized"], []).append(entry)
    pages: dict[tuple[str, bool], tuple[str, bytes]] = {}
    names = sorted(files)
    index = "".join(f'<a href="/simple/{n}/">{n}</a><br>\n' for n in names)
    for wants_json in (False, True):
        pages[("/simple/", wants_json)] = ("text/html", index.encode())
    for name, entries in files.items():
        links = "".join(f'<a href="/files/{e["filename"]}#sha256={e["sha256"]}" '
                        f'data-requires-python="{e["meta"]["requires_python"]}">'
                        f'{e["filename"]}</a><br>\n' for e in entries)
        pages[(f"/simple/{name}/", False)] = ("text/html", links.encode())
        doc = {"meta": {"api-version": "1.1"}, "name": name, "files": [
            {"filename": e["filename"], "url": f"/files/{e['filename']}",
             "hashes": {"sha256": e["sha256"]}} for e in entries]}
        pages[(f"/simple/{name}/", True)] = (JSON_TYPE, json.dumps(doc).encode())
        for e in entries:
            body = (corpus / e["file"]).read_bytes()
            for wants_json in (False, True):
                pages[(f"/files/{e['filename']}", wants_json)] = ("application/octet-stream", body)
    return pages


PAGES = _build(Path(os.environ["BENCH_FLOOR_CORPUS"]))


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    wants_json = JSON_TYPE in environ.get("HTTP_ACCEPT", "")
    found = PAGES.get((environ.get("PATH_INFO", ""), wants_json))
    if found is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]
    content_type, body = found
    start_response("200 OK", [("Content-Type", content_type),
                              ("Content-Length", str(len(body)))])
    return [body]
