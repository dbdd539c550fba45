"""PEP 691 content negotiation: which form of a simple page the client asked for.

Installers send ``Accept`` with q-values (pip: JSON 1.0, HTML 0.1, text/html 0.01); browsers send
``text/html`` and ``*/*``. No header means a pre-PEP-691 client, which gets HTML.
"""

from dataclasses import dataclass

from django.http import HttpRequest

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# Ties go to the earlier type: a bare "*/*" gets text/html, as PEP 691 recommends.
SUPPORTED = (TEXT_HTML, HTML_V1, JSON_V1)
ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}


@dataclass(frozen=True)
class _Range:
    media_type: str
    q: float
    position: int


def _parse_q(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def parse_accept(header: str) -> list[_Range]:
    """The media ranges of an ``Accept`` header, aliases resolved; malformed parts skipped."""
    ranges = []
    for position, part in enumerate(header.split(",")):
        media_type, *params = part.split(";")
        media_type = media_type.strip().lower()
        if "/" not in media_type:
            continue
        ranges.append(_Range(ALIASES.get(media_type, media_type), _parse_q(params), position))
    return ranges


def _specificity(media_range: str, candidate: str) -> int:
    """How exactly ``media_range`` names ``candidate``: 2 exact, 1 type/*, 0 */*, -1 not."""
    if media_range == candidate:
        return 2
    if media_range == "*/*":
        return 0
    if media_range.endswith("/*") and candidate.startswith(media_range[:-1]):
        return 1
    return -1


def _rank(ranges: list[_Range], candidate: str) -> tuple[float, int, int] | None:
    """The q the client gives ``candidate`` (from its most specific range), or None."""
    best: tuple[int, _Range] | None = None
    for media_range in ranges:
        specificity = _specificity(media_range.media_type, candidate)
        if specificity >= 0 and (best is None or specificity > best[0]):
            best = (specificity, media_range)
    if best is None or best[1].q <= 0:
        return None
    return best[1].q, best[0], -best[1].position


def choose_content_type(accept: str) -> str | None:
    """The supported type the client prefers; None when it accepts none of them (406)."""
    if not accept.strip():
        return TEXT_HTML
    ranges = parse_accept(accept)
    ranked = [(rank, -index, candidate) for index, candidate in enumerate(SUPPORTED)
              if (rank := _rank(ranges, candidate)) is not None]
    return max(ranked)[2] if ranked else None


def requested_content_type(request: HttpRequest) -> str | None:
    """``?format=`` (as PyPI allows, for browsers and curl) wins over ``Accept``."""
    override = request.GET.get("format")
    if override is not None:
        # One media type; an unencoded "+" in the URL arrives as a space.
        return choose_content_type(override.strip().replace(" ", "+"))
    return choose_content_type(request.headers.get("Accept", ""))


def is_json(content_type: str) -> bool:
    return content_type == JSON_V1
