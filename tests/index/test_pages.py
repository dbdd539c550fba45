"""The public project and user pages, the README rendering behind them, and the home page's list
of recently updated projects.

READMEs are written by anyone with an upload token: they are untrusted HTML sources and must be
sanitised with a well-known library before they reach a page (OWASP ASVS 5.0 1.3.1; 1.2.1 for the
output encoding of project URLs and other metadata)."""

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from relatch.index.models import File, Project, Release, Role
from relatch.index.pages import rendering
from relatch.index.pages.rendering import render_html, rendered_description
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

SHA = "ab" * 32


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Rendered READMEs are cached by release id and content; ids repeat between tests.
    cache.clear()


def make_project(name: str = "Demo_Pkg", **extra: Any) -> Project:
    from relatch.index.names import normalize_project_name

    return Project.objects.create(name=name, normalized_name=normalize_project_name(name), **extra)


def make_release(project: Project, version: str, **extra: Any) -> Release:
    from packaging.utils import canonicalize_version

    return Release.objects.create(
        project=project, version=version, canonical_version=canonicalize_version(version), **extra
    )


def make_file(release: Release, filename: str, size: int = 2048, sha: str = SHA) -> File:
    path = f"packages/{sha[:2]}/{sha[2:4]}/{sha[4:]}/{filename}"
    return File.objects.create(
        release=release, filename=filename, path=path, size=size, sha256_digest=sha,
        blake2_256_digest="cd" * 32,
        packagetype="bdist_wheel" if filename.endswith(".whl") else "sdist",
    )


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, to check what a browser would run."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def links(self) -> dict[str, dict[str, str]]:
        return {a["href"]: a for tag, a in self.found if tag == "a" and "href" in a}


OUR_SCRIPTS = ("/static/relatch/forms.", "/static/relatch/times.", "/static/relatch/copy-token.")


def assert_nothing_runs(html: str) -> None:
    """No script element, no event-handler attribute, no script or data URL in a link or
    source: what a browser would execute from the page."""
    for tag, attrs in Elements(html).found:
        if tag == "script" and attrs.get("src", "").startswith(OUR_SCRIPTS):
            continue  # the site's own served scripts (first error, copy buttons), not the README's
        assert tag not in {"script", "iframe", "object", "embed", "svg", "style", "form"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in {"href", "src", "action", "formaction", "xlink:href"}:
                squeezed = "".join(value.split()).lower()
                assert not squeezed.startswith(("javascript:", "data:", "vbscript:")), (tag, value)


@pytest.fixture
def demo(make_user: Any) -> Project:
    """A project with an owner, a maintainer, two releases (2.0 the latest) and two files."""
    alice = make_user(username="alice", email="alice@example.org")
    bob = make_user(username="bob", email="bob@example.org")
    project = make_project()
    Role.objects.create(project=project, user=alice, kind=Role.Kind.OWNER)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.MAINTAINER)
    old = make_release(project, "1.0", summary="The old one", description="Old **readme**",
                       description_content_type="text/markdown")
    make_file(old, "demo_pkg-1.0.tar.gz", sha="01" * 32)
    new = make_release(
        project, "2.0", summary="Demonstrates pages",
        description="# Demo\n\nSome *emphasis* and `code`.",
        description_content_type="text/markdown; charset=UTF-8; variant=GFM",
        project_urls={"Source": "https://git.example.org/demo", "Docs": "http://docs.example.org/"},
        author_email="author@example.net", maintainer_email="maint@example.net",
    )
    make_file(new, "demo_pkg-2.0-py3-none-any.whl", size=123_456, sha="02" * 32)
    make_file(new, "demo_pkg-2.0.tar.gz", sha="03" * 32)
    return project


def test_project_page_shows_name_latest_version_readme_links_files_and_maintainers(
    client: Any, demo: Project
) -> None:
    response = client.get("/project/demo-pkg/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Demo_Pkg <span class=\"project-version\">2.0</span></h1>" in html
    assert "Demonstrates pages" in html and "The old one" not in html
    assert "pip install --index-url http://testserver/simple/ Demo_Pkg</code>" in html
    assert "<em>emphasis</em>" in html and "<code>code</code>" in html
    assert 'id="user-content-demo"' in html
    links = Elements(html).links()
    source = links["https://git.example.org/demo"]
    assert set(source["rel"].split()) >= {"nofollow", "noopener"}
    assert "Source:" in html and "Docs:" in html and "http://docs.example.org/" in links
    wheel = f"/files/packages/02/02/{'02' * 30}/demo_pkg-2.0-py3-none-any.whl"
    assert wheel in links and "demo_pkg-2.0.tar.gz" in html
    assert "demo_pkg-1.0.tar.gz" not in html  # files of the shown version only
    assert "120.6\xa0KB" in html and "02" * 32 in html
    assert "/user/alice/" in links and "/user/bob/" in links
    assert html.index(">alice</a> <span class=\"badge\">Owner") < html.index(">bob</a>")
    assert "Maintainer</span>" in html
    assert "/project/demo-pkg/1.0/" in links and "/project/demo-pkg/2.0/" in links
    assert "Latest</span>" in html


def test_project_page_shows_no_email_address(client: Any, demo: Project) -> None:
    html = client.get("/project/demo-pkg/").content.decode()
    assert "@example" not in html


def test_version_page_shows_that_release(client: Any, demo: Project) -> None:
    response = client.get("/project/demo-pkg/1.0/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The old one" in html and "Old <strong>readme</strong>" in html
    assert "pip install --index-url http://testserver/simple/ Demo_Pkg==1.0</code>" in html
    assert "uv pip install --default-index http://testserver/simple/ Demo_Pkg==1.0</code>" in html
    assert "demo_pkg-1.0.tar.gz" in html and "demo_pkg-2.0.tar.gz" not in html
    assert "This is not the latest version" in html and 'href="/project/demo-pkg/"' in html


@pytest.mark.parametrize(("path", "pin"), [("/project/demo-pkg/", ""),
                                           ("/project/demo-pkg/1.0/", "==1.0")])
def test_the_install_commands_name_this_index(client: Any, demo: Project, settings: Any,
                                              path: str, pin: str) -> None:
    """Copied as shown, neither command can fetch another project of the same name from PyPI;
    the copy buttons wait hidden for the script (served, not inline: the CSP allows no other)."""
    settings.BASE_URL = "https://pkgs.example.org"
    html = client.get(path).content.decode()
    assert (f'<code id="install-pip">pip install --index-url https://pkgs.example.org/simple/ '
            f"Demo_Pkg{pin}</code>") in html
    assert (f'<code id="install-uv">uv pip install --default-index '
            f"https://pkgs.example.org/simple/ Demo_Pkg{pin}</code>") in html
    assert "<code>pip install Demo_Pkg" not in html
    buttons = [a for tag, a in Elements(html).found if tag == "button" and "data-copy-target" in a]
    assert [b["data-copy-target"] for b in buttons] == ["install-pip", "install-uv"]
    assert all("hidden" in b for b in buttons)
    scripts = [a for tag, a in Elements(html).found if tag == "script"]
    assert all(s.get("src", "").startswith(OUR_SCRIPTS) for s in scripts)
    assert any(s["src"].startswith("/static/relatch/copy-token.") for s in scripts)


def test_a_project_without_releases_offers_no_install_command(client: Any) -> None:
    make_project()
    html = client.get("/project/demo-pkg/").content.decode()
    assert "--index-url" not in html and "copy-token" not in html


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/project/Demo_Pkg/", "/project/demo-pkg/"),
        ("/project/demo.pkg/", "/project/demo-pkg/"),
        ("/project/DEMO--pkg/2.0/", "/project/demo-pkg/2.0/"),
        ("/project/demo-pkg/2.0.0/", "/project/demo-pkg/2.0/"),  # PEP 440: the same release
    ],
)
def test_non_normalised_names_and_versions_redirect_permanently(
    client: Any, demo: Project, path: str, target: str
) -> None:
    response = client.get(path)
    assert response.status_code == 301
    assert response["Location"] == target


@pytest.mark.parametrize(
    "path", ["/project/nothing/", "/project/demo-pkg/3.0/", "/project/demo-pkg/not-a-version/",
             "/user/nobody/"],
)
def test_unknown_projects_versions_and_users_are_404(client: Any, demo: Project, path: str) -> None:
    assert client.get(path).status_code == 404


def test_pages_only_answer_reads(client: Any, demo: Project) -> None:
    assert client.post("/project/demo-pkg/").status_code == 405
    assert client.head("/project/demo-pkg/").status_code == 200


def test_latest_is_by_pep440_not_upload_order_and_skips_yanked_and_prereleases(
    client: Any
) -> None:
    project = make_project("order")
    make_release(project, "1.10", created_at=timezone.now() - timedelta(days=3))
    make_release(project, "1.9", created_at=timezone.now() - timedelta(days=2))
    make_release(project, "2.0b1", created_at=timezone.now() - timedelta(days=1))
    make_release(project, "1.11", yanked=True, yanked_reason="Broken build")
    html = client.get("/project/order/").content.decode()
    assert 'class="project-version">1.10</span>' in html
    history = html[html.index("Release history"):]
    # PEP 440 order, newest first, whatever the upload order: 2.0b1 > 1.11 > 1.10 > 1.9.
    positions = [history.index(v) for v in (">2.0b1<", ">1.11<", ">1.10<", ">1.9<")]
    assert positions == sorted(positions)
    assert "Yanked</span> Broken build" in history


def test_yanked_release_page_says_so_with_reason(client: Any) -> None:
    project = make_project("yanky")
    make_release(project, "1.0")
    make_release(project, "1.1", yanked=True, yanked_reason="Deletes your home directory")
    html = client.get("/project/yanky/1.1/").content.decode()
    assert "Version 1.1 is yanked." in html and "Reason: Deletes your home directory" in html
    assert 'class="project-version">1.0</span>' in client.get("/project/yanky/").content.decode()


def test_project_with_only_yanked_releases_says_so(client: Any) -> None:
    project = make_project("gone")
    make_release(project, "1.0", yanked=True)
    make_release(project, "1.1", yanked=True, yanked_reason="")
    html = client.get("/project/gone/").content.decode()
    assert "Every release of this project is yanked" in html
    assert 'class="project-version">1.1</span>' in html
    assert "Version 1.1 is yanked." in html and "No reason was given." in html


def test_project_without_releases_has_a_page(client: Any) -> None:
    make_project("empty")
    response = client.get("/project/empty/")
    assert response.status_code == 200
    assert "This project has no releases." in response.content.decode()


@pytest.mark.parametrize(
    ("content_type", "description", "expected"),
    [
        ("text/markdown", "# Title\n\nSome *words*.", "<em>words</em>"),
        ("text/markdown; variant=CommonMark", "Some **words**.", "<strong>words</strong>"),
        ("text/markdown; variant=GFM", "| a |\n|---|\n| b |", "<td>b</td>"),
        ("text/x-rst", "Title\n=====\n\nSome *words*.", "<em>words</em>"),
        ("text/x-rst; charset=UTF-8", "Some ``code``.", '<span class="docutils literal">code'),
        ("", "Some *words* in RST, the metadata default.", "<em>words</em>"),
        ("text/plain", "line one\nline *two*", "line one<br>line *two*"),
        ("text/x-unknown", "a < b\nc", "a &lt; b<br>c"),
        # A failing renderer falls back to text: RST docutils refuses (an unknown directive, an
        # unclosed emphasis), an unknown markdown variant.
        ("text/x-rst", ".. nonsense:: a\n\n*x*", ".. nonsense:: a<br><br>*x*"),
        ("", "*x\n\ny", "*x<br><br>y"),
        ("text/markdown; variant=Nonsense", "# *x*", "# *x*"),
    ],
)
def test_description_rendered_per_content_type(
    content_type: str, description: str, expected: str
) -> None:
    assert expected in render_html(description, content_type)


def test_empty_description_renders_nothing(client: Any) -> None:
    make_release(make_project("blank"), "1.0", description="  \n")
    assert render_html("  \n", "text/markdown") == ""
    assert "No description." in client.get("/project/blank/").content.decode()


XSS = [
    ("text/markdown", "<script>alert(1)</script>"),
    ("text/markdown", '<img src="x" onerror="alert(1)">'),
    ("text/markdown", "<svg onload=alert(1)><circle/></svg>"),
    ("text/markdown", "[click](javascript:alert(1))"),
    ("text/markdown", '<a href="JaVaScRiPt:alert(1)">click</a>'),
    ("text/markdown", '<a href="java&#x09;script:alert(1)">click</a>'),
    ("text/markdown", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("text/markdown", '<iframe src="https://evil.example/"></iframe>'),
    ("text/markdown", '<p style="background:url(javascript:alert(1))" onclick="x()">hi</p>'),
    ("text/markdown", '<form action="https://evil.example/"><input name=password></form>'),
    ("text/markdown", "```html\n</code></pre><script>alert(1)</script>\n```"),
    ("text/x-rst", ".. raw:: html\n\n   <script>alert(1)</script>\n"),
    ("text/x-rst", "`click <javascript:alert(1)>`_\n"),
    ("text/x-rst", ".. image:: javascript:alert(1)\n"),
    ("text/plain", "<script>alert(1)</script>"),
    ("", "<img src=x onerror=alert(1)>"),
]


@pytest.mark.parametrize(("content_type", "payload"), XSS)
def test_script_in_a_readme_is_neutralised(
    client: Any, content_type: str, payload: str
) -> None:
    """ASVS 1.3.1: untrusted HTML is sanitised by nh3 (through readme_renderer)."""
    make_release(make_project("xss"), "1.0", description=f"Intro\n\n{payload}\n\nOutro",
                 description_content_type=content_type)
    response = client.get("/project/xss/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Intro" in html
    assert_nothing_runs(html)


def test_the_sanitiser_is_not_vacuous(client: Any) -> None:
    """The check above would catch an unsanitised README: raw HTML put on the page fails it."""
    with pytest.raises(AssertionError):
        assert_nothing_runs('<p>hi</p><img src="x" onerror="alert(1)">')
    with pytest.raises(AssertionError):
        assert_nothing_runs('<a href=" JAVAscript:alert(1)">x</a>')


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example.org/demo",
        "//evil.example/no-scheme",
        "https://",
        "https://ok.example/\nline",
    ],
)
def test_project_urls_without_http_scheme_are_not_links(client: Any, url: str) -> None:
    make_release(make_project("links"), "1.0", project_urls={"Trap": url, "Fine": "https://ok.example/"})
    html = client.get("/project/links/").content.decode()
    links = Elements(html).links()
    assert "https://ok.example/" in links
    assert url not in links and all(href.strip() != url.strip() for href in links)
    assert "Trap:" in html  # the label and the text are still shown, as text
    assert_nothing_runs(html)


def test_project_url_quotes_cannot_break_out_of_the_attribute(client: Any) -> None:
    """ASVS 1.2.1: the URL is attribute-encoded; a quote does not end the href."""
    evil = 'https://ok.example/"><script>alert(1)</script>'
    make_release(make_project("quotes"), "1.0", project_urls={"Home": evil},
                 home_page="https://home.example/")
    html = client.get("/project/quotes/").content.decode()
    links = Elements(html).links()
    assert evil in links and "https://home.example/" in links
    assert_nothing_runs(html)


def test_rendered_readme_is_cached_by_release_and_content(monkeypatch: Any) -> None:
    calls: list[str] = []

    def spy(description: str, content_type: str) -> str:
        calls.append(description)
        return render_html(description, content_type)

    monkeypatch.setattr(rendering, "render_html", spy)
    first = rendered_description(release_id=1, description="# A", content_type="text/markdown")
    again = rendered_description(release_id=1, description="# A", content_type="text/markdown")
    assert first == again and calls == ["# A"]
    changed = rendered_description(release_id=1, description="# B", content_type="text/markdown")
    assert ">B<" in changed and calls == ["# A", "# B"]
    rendered_description(release_id=2, description="# A", content_type="text/markdown")
    rendered_description(release_id=1, description="# A", content_type="text/x-rst")
    assert len(calls) == 4


def test_project_page_renders_the_readme_once(client: Any, demo: Project, monkeypatch: Any) -> None:
    calls: list[str] = []
    real = rendering.render_html
    monkeypatch.setattr(rendering, "render_html", lambda d, t: calls.append(d) or real(d, t))
    first = client.get("/project/demo-pkg/").content
    second = client.get("/project/demo-pkg/").content
    assert first == second and len(calls) == 1


def _grow(project: Project, make_user: Any, count: int) -> None:
    for n in range(count):
        release = make_release(project, f"9.{n}", description=f"*{n}*",
                               description_content_type="text/markdown")
        make_file(release, f"demo_pkg-9.{n}.tar.gz", sha=f"{n:02d}" * 32)
        Role.objects.create(project=project, user=make_user(), kind=Role.Kind.MAINTAINER)


def test_project_page_query_count_does_not_grow(
    demo: Project, make_user: Any, django_assert_num_queries: Any
) -> None:
    client = Client()  # not the committing client: it polls the task queue after each request
    # Project, releases, files of the shown release, roles with users, the shown description.
    with django_assert_num_queries(5):
        assert client.get("/project/demo-pkg/").status_code == 200
    _grow(demo, make_user, 15)
    with django_assert_num_queries(5):
        assert client.get("/project/demo-pkg/").status_code == 200
    with django_assert_num_queries(5):
        assert client.get("/project/demo-pkg/9.3/").status_code == 200


def test_user_page_query_count_does_not_grow(
    demo: Project, make_user: Any, django_assert_num_queries: Any
) -> None:
    client = Client()
    with django_assert_num_queries(2):
        assert client.get("/user/alice/").status_code == 200
    alice = demo.roles.get(kind=Role.Kind.OWNER).user
    for n in range(10):
        Role.objects.create(project=make_project(f"more-{n}"), user=alice, kind=Role.Kind.OWNER)
    with django_assert_num_queries(2):
        assert client.get("/user/alice/").status_code == 200


def test_user_page_lists_projects_with_roles_and_hides_emails(
    client: Any, demo: Project, make_user: Any
) -> None:
    alice = demo.roles.get(kind=Role.Kind.OWNER).user
    alice.name = "Alice Liddell"
    alice.save()
    other = make_project("Other.Thing")
    Role.objects.create(project=other, user=alice, kind=Role.Kind.MAINTAINER)
    make_project("not-hers")
    response = client.get("/user/ALICE/")  # usernames ignore case
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>alice</h1>" in html and "Alice Liddell" in html
    assert alice.date_joined.strftime("%Y-%m-%d") in html
    links = Elements(html).links()
    assert "/project/demo-pkg/" in links and "/project/other-thing/" in links
    assert "/project/not-hers/" not in links
    assert ">Demo_Pkg</a> <span class=\"badge\">Owner" in html
    assert ">Other.Thing</a> <span class=\"badge\">Maintainer" in html
    assert "@" not in html


def test_user_without_projects_has_a_page(client: Any, make_user: Any) -> None:
    make_user(username="carol")
    html = client.get("/user/carol/").content.decode()
    assert "carol has no projects." in html


def test_members_are_offered_the_manage_page_and_no_one_else(
    client: Any, demo: Project, make_user: Any
) -> None:
    manage = 'href="/manage/project/demo-pkg/"'
    assert manage not in client.get("/project/demo-pkg/").content.decode()
    sign_in(client, make_user(username="stranger"))
    html = client.get("/project/demo-pkg/").content.decode()
    assert "Sign out" in html and "Demonstrates pages" in html and manage not in html
    for member in ("alice", "bob"):
        sign_in(client, demo.roles.get(user__username=member).user)
        assert manage in client.get("/project/demo-pkg/").content.decode()
    assert client.get("/user/bob/").status_code == 200


def test_home_lists_the_ten_most_recently_updated_projects(client: Any) -> None:
    now = timezone.now()
    for n in range(12):
        make_project(f"proj-{n:02d}", last_changed_at=now - timedelta(hours=n))
    html = client.get("/").content.decode()
    links = Elements(html).links()
    shown = [f"/project/proj-{n:02d}/" for n in range(10)]
    assert all(link in links for link in shown)
    assert "/project/proj-10/" not in links and "/project/proj-11/" not in links
    assert html.index("proj-00") < html.index("proj-09")


def test_a_readme_heading_anchor_has_a_name_for_screen_readers(client: Any) -> None:
    """The GFM renderer's empty self-link after each heading gets a name (axe: link-name)."""
    make_release(make_project("anchors"), "1.0", description="# Usage\n\nText.",
                 description_content_type="text/markdown")
    html = client.get("/project/anchors/").content.decode()
    assert ('<a href="#user-content-usage" rel="nofollow" aria-label="Link to this section"></a>'
            in html)
