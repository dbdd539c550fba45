"""Every publish is attributable (issue 21): the File row, the account's events and security
history, and the JSON API say which trusted publisher (or which kind of token) uploaded it.

The minted token is made here as a row of the shape the OIDC exchange makes (publisher set,
project-scoped, 15 minutes): the exchange has tests of its own; what is tested here is the
upload pipeline's side, through the real /legacy/ endpoint.
"""

import html
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.audit.services import record_event
from relatch.index.models import APIToken, File, Project
from relatch.index.simple import pypi
from relatch.index.trusted.describe import publisher_data
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.upload.imports import import_distribution
from tests.conftest import sign_in
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.project_rows import make_project
from tests.index.simple_rows import publish
from tests.index.test_upload import post, token_for
from tests.index.trusted.conftest import make_publisher
from tests.index.trusted.publisher_rows import mint

pytestmark = pytest.mark.django_db

GITHUB = "https://token.actions.githubusercontent.com"
HISTORY = reverse("account:history")


def wheel(version: str = "1.0") -> Dist:
    return build_wheel("acme-tool", version)


def json_files(client: Client, name: str = "acme-tool") -> dict[str, Any]:
    response = client.get(f"/pypi/{name}/json")
    assert response.status_code == 200, response.content
    document = json.loads(response.content)
    return {entry["filename"]: entry for entry in document["urls"]}


def history_text(make_client: Any, user: User) -> str:
    """The account's security history page as its owner reads it, tags and entities gone."""
    response = sign_in(make_client(), user).get(HISTORY)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def publisher(ci_owner: User, ci_project: Project) -> TrustedPublisher:
    return make_publisher(issuer=GITHUB, added_by=ci_owner, project=ci_project,
                          repository="Acme/Tool", workflow="release.yml")


# --- a trusted publisher's token ---------------------------------------------------------------


def test_a_file_from_a_trusted_publisher_names_it_everywhere(
    client: Client, make_client: Any, ci_owner: User, publisher: TrustedPublisher
) -> None:
    row, token = mint(publisher)
    dist = wheel()
    response = post(client, dist, token)
    assert response.status_code == 200, response.content

    stored = File.objects.select_related("release").get()
    assert (stored.upload_token, stored.trusted_publisher, stored.uploader) == (
        row, publisher, ci_owner)
    # The release's metadata came from the CI job: the recovery desk must know that.
    assert stored.release.trusted_publisher == publisher

    event = SecurityEvent.objects.get(kind=EventKind.FILE_UPLOADED)
    assert (event.user, event.factor) == (ci_owner, Factor.TRUSTED_PUBLISHER)
    assert event.details["token_id"] == row.pk
    assert event.details["publisher"] == publisher_data(publisher)
    assert "token_name" not in event.details

    via = json_files(client)[dist.filename]["uploaded_via"]
    assert via == {"kind": "trusted_publisher", "publisher": {
        "kind": "github", "issuer": GITHUB, "repository": "acme/tool",
        "workflow": "release.yml", "environment": None,
        "url": "https://github.com/acme/tool",
    }}

    page = history_text(make_client, ci_owner)
    assert ("acme-tool 1.0: acme_tool-1.0-py3-none-any.whl, by trusted publisher "
            "GitHub Actions: acme/tool, workflow release.yml") in page
    assert "Trusted publisher (OIDC)" in page  # the factor column

    # The public project page says it too, as PyPI shows "Trusted Publishing", linked.
    public = html.unescape(client.get("/project/acme-tool/").content.decode())
    assert ('<a href="https://github.com/acme/tool" rel="nofollow noopener noreferrer">'
            "GitHub Actions: acme/tool, workflow release.yml</a>") in public


def test_the_same_file_again_is_a_skip_naming_the_publisher(
    client: Client, ci_owner: User, publisher: TrustedPublisher
) -> None:
    """A re-run CI job: nothing changes, and the skip says who re-ran it."""
    _row, token = mint(publisher)
    dist = wheel()
    assert post(client, dist, token).status_code == 200
    row, again = mint(publisher)
    assert post(client, dist, again).status_code == 200
    skipped = SecurityEvent.objects.get(kind=EventKind.UPLOAD_SKIPPED)
    assert skipped.factor == Factor.TRUSTED_PUBLISHER
    assert skipped.details["publisher"] == publisher_data(publisher)
    assert skipped.details["token_id"] == row.pk
    assert File.objects.get().upload_token_id != row.pk  # the first upload's token stays


def test_an_environment_and_a_self_hosted_issuer_are_named(
    client: Client, make_client: Any, ci_owner: User, ci_project: Project
) -> None:
    publisher = make_publisher(issuer="https://git.example.org", dialect="gitlab",
                               added_by=ci_owner, project=ci_project,
                               repository="tools/acme-tool", workflow=".gitlab-ci.yml",
                               environment="pypi")
    _row, token = mint(publisher)
    dist = build_sdist("acme-tool", "2.0")
    assert post(client, dist, token).status_code == 200
    via = json_files(client)[dist.filename]["uploaded_via"]
    assert via["publisher"]["kind"] == "gitlab"
    assert via["publisher"]["environment"] == "pypi"
    assert via["publisher"]["url"] == "https://git.example.org/tools/acme-tool"
    assert ("by trusted publisher GitLab CI/CD at git.example.org: tools/acme-tool, workflow "
            ".gitlab-ci.yml, environment pypi") in history_text(make_client, ci_owner)


def test_a_trusted_publisher_used_event_reads_plainly(
    make_client: Any, ci_owner: User, publisher: TrustedPublisher
) -> None:
    """The exchange's own event (recorded by the exchange, with the publisher's data at the
    top of its details)."""
    record_event(user=ci_owner, kind=EventKind.TRUSTED_PUBLISHER_USED,
                 factor=Factor.TRUSTED_PUBLISHER,
                 details={**publisher_data(publisher), "project": "acme-tool", "token_id": 7,
                          "ref": "refs/heads/main", "run_id": "42"})
    page = history_text(make_client, ci_owner)
    assert "Upload token minted for a trusted publisher" in page
    assert "acme-tool: GitHub Actions: acme/tool, workflow release.yml" in page


@pytest.mark.parametrize("case", ["another project", "expired", "revoked"])
def test_a_publishers_token_is_held_to_the_usual_rules(
    client: Client, ci_owner: User, publisher: TrustedPublisher, case: str
) -> None:
    """Project scope, expiry and revocation apply to minted tokens unchanged; a refusal is
    recorded on the account with the publisher named."""
    row, token = mint(publisher, minutes=-1 if case == "expired" else 15)
    dist = wheel()
    if case == "another project":
        make_project("other-tool", owners=(ci_owner,))
        dist = build_wheel("other-tool", "1.0")
    if case == "revoked":
        APIToken.objects.filter(pk=row.pk).update(
            revoked_at=timezone.now(), revoked_because=APIToken.RevokedBecause.FINISHED)
    response = post(client, dist, token)
    assert response.status_code == 403
    assert not File.objects.exists()
    if case == "another project":
        assert ("minted for a trusted publisher of 'acme-tool' and cannot upload to "
                "'other-tool'") in response.content.decode()
        refused = SecurityEvent.objects.get(kind=EventKind.UPLOAD_REFUSED)
        assert refused.factor == Factor.TRUSTED_PUBLISHER
        assert refused.details["publisher"] == publisher_data(publisher)


# --- an ordinary token, the operator's import, older files ----------------------------------


def test_a_file_from_an_api_token_names_the_token_to_its_owner_only(
    client: Client, make_client: Any, ci_owner: User
) -> None:
    token = token_for(ci_owner)  # named "ci"
    dist = build_wheel("new-tool", "1.0")
    assert post(client, dist, token).status_code == 200
    row = APIToken.objects.get(name="ci")

    stored = File.objects.select_related("release").get()
    assert (stored.upload_token, stored.trusted_publisher) == (row, None)
    assert stored.release.trusted_publisher is None
    for kind in (EventKind.FILE_UPLOADED, EventKind.PROJECT_CREATED):
        event = SecurityEvent.objects.get(kind=kind)
        assert event.factor == Factor.API_TOKEN
        assert (event.details["token_id"], event.details["token_name"]) == (row.pk, "ci")
        assert "publisher" not in event.details

    response = client.get("/pypi/new-tool/json")
    assert json.loads(response.content)["urls"][0]["uploaded_via"] == {"kind": "api_token"}
    # The token's name is private to its account: the public JSON never carries it.
    assert b'"ci"' not in response.content
    public = client.get("/project/new-tool/").content.decode()
    assert "<td>API token</td>" in public and "\u201cci\u201d" not in public
    assert "new_tool-1.0-py3-none-any.whl, with API token \u201cci\u201d" in history_text(
        make_client, ci_owner)


def test_an_operators_import_says_so(client: Client, ci_owner: User, tmp_path: Path) -> None:
    dist = build_wheel("new-tool", "1.0")
    source = tmp_path / dist.filename
    source.write_bytes(dist.content)
    stored = import_distribution(source=source, owner=ci_owner)
    assert (stored.upload_token, stored.trusted_publisher) == (None, None)
    assert SecurityEvent.objects.get(kind=EventKind.FILE_UPLOADED).factor == ""
    via = json_files(client, "new-tool")[dist.filename]["uploaded_via"]
    assert via == {"kind": "operator_import"}


def test_an_operators_import_is_named_in_the_history(
    make_client: Any, ci_owner: User, tmp_path: Path
) -> None:
    dist = build_wheel("new-tool", "1.0")
    source = tmp_path / dist.filename
    source.write_bytes(dist.content)
    stored = import_distribution(source=source, owner=ci_owner)
    assert (stored.upload_token, stored.trusted_publisher) == (None, None)
    assert SecurityEvent.objects.get(kind=EventKind.FILE_UPLOADED).factor == ""
    assert "new_tool-1.0-py3-none-any.whl, by the operator's import" in history_text(
        make_client, ci_owner)


def test_a_file_from_before_attribution_says_null(client: Client) -> None:
    dist = build_wheel("old-tool", "1.0")
    publish(dist)  # a row as Relatch kept them before issue 21
    assert json_files(client, "old-tool")[dist.filename]["uploaded_via"] is None


def test_the_json_etag_changes_with_the_document_format(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client (or cache) holding a document made before ``uploaded_via`` existed gets the
    new one, not a 304."""
    publish(build_wheel("old-tool", "1.0"))
    etag = client.get("/pypi/old-tool/json")["ETag"]
    assert client.get("/pypi/old-tool/json", HTTP_IF_NONE_MATCH=etag).status_code == 304
    monkeypatch.setattr(pypi, "DOCUMENT_FORMAT", "1")
    response = client.get("/pypi/old-tool/json", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag
