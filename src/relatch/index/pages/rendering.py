"""A release's description (its README) as safe HTML, cached by content.

The description is text anyone with an upload token wrote, so it is untrusted: readme_renderer turns
it into HTML and sanitises that with nh3 (an allow-list of tags and attributes; no scripts, no
``on*`` attributes, links only to http, https and mailto). Only that sanitised output is ever marked
safe, here and nowhere else.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from importlib.metadata import version as installed_version

from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger(__name__)

# A day: the key changes with the content, so the timeout only bounds memory, never staleness.
CACHE_SECONDS = 24 * 3600
# A new readme_renderer or nh3 (a sanitiser fix, say) must not serve HTML cleaned by the old one.
# Bump _OUR_REVISION when what we do to the renderer's output changes.
_OUR_REVISION = "2"
_RENDERER_VERSIONS = (
    f"{installed_version('readme_renderer')}-{installed_version('nh3')}-{_OUR_REVISION}"
)
# The GFM renderer ends each heading with an empty anchor to itself: a link a screen reader
# announces with no name (axe: link-name, serious). The href is the sanitiser's own output.
_EMPTY_HEADING_ANCHOR = re.compile(r'<a href="(#user-content-[^"<>]*)" rel="nofollow"></a>')
_MARKDOWN_VARIANTS = {"gfm": "GFM", "commonmark": "CommonMark"}


def parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"text/markdown; variant=GFM"`` -> ``("text/markdown", {"variant": "GFM"})``; lower-cased
    media type, parameter names lower-cased, values as given."""
    media_type, *params = (part.strip() for part in content_type.split(";"))
    parsed: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"')
    return media_type.lower(), parsed


# readme_renderer is imported on first use: docutils, pygments and comrak cost half a second,
# which every server process would otherwise pay on its first request of any kind.


def _render_markdown(description: str, params: dict[str, str]) -> str | None:
    import readme_renderer.markdown

    variant = _MARKDOWN_VARIANTS.get(params.get("variant", "GFM").lower())
    if variant is None:
        return None
    html = readme_renderer.markdown.render(description, variant=variant)
    if html is None:
        return None
    return _EMPTY_HEADING_ANCHOR.sub(
        r'<a href="\1" rel="nofollow" aria-label="Link to this section"></a>', html
    )


def _render_rst(description: str, params: dict[str, str]) -> str | None:
    import readme_renderer.rst

    return readme_renderer.rst.render(description)


def _render_text(description: str, params: dict[str, str]) -> str | None:
    import readme_renderer.txt

    return readme_renderer.txt.render(description)


_RENDERERS: dict[str, Callable[[str, dict[str, str]], str | None]] = {
    "text/markdown": _render_markdown,
    "text/x-rst": _render_rst,
    # Core metadata: a description without a content type is reStructuredText.
    "": _render_rst,
    "text/plain": _render_text,
}


def render_html(description: str, content_type: str) -> str:
    """Sanitised HTML of ``description`` per its ``Description-Content-Type``; plain text when
    the type is unknown or its renderer fails (a broken README shows as text, never a 500)."""
    if not description.strip():
        return ""
    media_type, params = parse_content_type(content_type)
    renderer = _RENDERERS.get(media_type, _render_text)
    try:
        rendered = renderer(description, params)
    except Exception:
        # docutils and the markdown engine can fail on hostile input in ways they do not declare.
        logger.warning("description rendering failed; showing it as text", exc_info=True)
        rendered = None
    if rendered is None:
        rendered = _render_text(description, params)
    return rendered or ""


def description_cache_key(*, release_id: int, description: str, content_type: str) -> str:
    """The key changes with the release, the text, its type and the renderer: no invalidation."""
    digest = hashlib.sha256(f"{content_type}\0{description}".encode()).hexdigest()
    return f"relatch:readme:{_RENDERER_VERSIONS}:{release_id}:{digest}"


def rendered_description(*, release_id: int, description: str, content_type: str) -> SafeString:
    """The description of a release as HTML safe to put in a page, rendered once per content."""
    key = description_cache_key(
        release_id=release_id, description=description, content_type=content_type
    )
    html = cache.get(key)
    if not isinstance(html, str):
        html = render_html(description, content_type)
        cache.set(key, html, CACHE_SECONDS)
    # Safe: render_html's output went through nh3's allow-list (readme_renderer.clean).
    return mark_safe(html)  # noqa: S308
