"""Who publishes a file, and how they were authenticated (issue 16 §4).

This is the one thing in which the two ways into the upload pipeline differ: twine sends an API
token (``relatch.index.upload.views``), and an operator on the command line names the account
(``relatch index_import_file … --owner USERNAME``, ``relatch.index.upload.imports``). Every
other step — the checks of the form, the file name, the digests and the archive, the rows, the
stored files and the events — is ``relatch.index.upload.services``'s, the same for both.
"""

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.audit.models import Factor
from relatch.index.models import APIToken, File, TrustedPublisher
from relatch.index.tokens.services import (
    WRONG_PURPOSE,
    TokenRefusedError,
    note_token_use,
    refuse_unusable_token,
    token_allows_project,
)
from relatch.index.trusted.describe import publisher_data
from relatch.index.upload.validation import UploadRefusedError
from relatch.mfa.policy import SecondFactorRequiredError, require_second_factor

UPLOAD_ACTION = "Uploading"
# In the events of an import: the account did not act, the operator did in its name.
OPERATOR_IMPORT = "operator import"


@dataclass(frozen=True)
class Publisher:
    """The account a file is published as (its uploader, and owner of a new project), and the
    token it came with (None: named by the operator on the command line)."""

    user: User
    token: APIToken | None = None

    @classmethod
    def with_token(cls, token: APIToken) -> "Publisher":
        return cls(user=token.user, token=token)

    @classmethod
    def named_by_operator(cls, user: User) -> "Publisher":
        return cls(user=user)

    @property
    def keeps_legacy_spellings(self) -> bool:
        """Whether file names may spell the project and version as older tools did
        (``python-dateutil-2.8.2.tar.gz``, ``zope.interface-5.4.0-…whl``, ``…-1.0.0-…`` in
        release 1.0): only the operator's import, which brings in the files a team already
        has (from pypiserver, devpi) under their own names. New uploads spell them the one
        canonical way every current build tool writes. Either way a release holds one sdist
        and one wheel per set of tags (``relatch.index.upload.uniqueness``)."""
        return self.token is None

    @property
    def trusted_publisher(self) -> TrustedPublisher | None:
        """The trusted publisher whose OIDC exchange minted the token (None: a token the
        account made, or the operator's import)."""
        return self.token.publisher if self.token is not None else None

    @property
    def via(self) -> str:
        """The way in, as ``File.uploaded_via`` keeps it."""
        if self.token is None:
            return File.Via.OPERATOR_IMPORT
        if self.token.publisher_id is not None:
            return File.Via.TRUSTED_PUBLISHER
        return File.Via.API_TOKEN

    @property
    def factor(self) -> str:
        """The factor the events record: the trusted publisher's exchange, the API token, or
        none for the operator's import."""
        if self.token is None:
            return ""
        return Factor.TRUSTED_PUBLISHER if self.token.publisher_id else Factor.API_TOKEN

    def file_event_details(self) -> dict[str, Any]:
        """What FILE_UPLOADED and UPLOAD_SKIPPED add about the way in: the token (and the
        publisher that minted it), or the operator's import. The token's name is private to
        its account, so it goes in the account's own events, never into the JSON API."""
        if self.token is None:
            return {"by": OPERATOR_IMPORT}
        if (found := self.trusted_publisher) is not None:
            # Copied, not referenced: the history still says which repository and workflow
            # published even if the publisher is later removed or the project deleted.
            return {"token_id": self.token.pk, "publisher": publisher_data(found)}
        return {"token_id": self.token.pk, "token_name": self.token.name}

    def project_event_details(self) -> dict[str, Any]:
        """What PROJECT_CREATED adds about the way in (the same as a file's)."""
        return self.file_event_details()

    def check(self) -> None:
        """Refuse (403) an account that may not publish now.

        A token's account must keep a second factor: a token is minted by someone who proved
        two factors, and stays usable only while the account keeps one (the operator
        authenticated on the server itself instead). A frozen account publishes nothing either
        way: a hijacker must not publish under the owner's name while staff review the account
        (DESIGN §5), and an operator's import waits for staff to unfreeze it too.
        """
        if self.token is not None and self.token.purpose != APIToken.Purpose.UPLOAD:
            # Read (install) and staff tokens never publish, whoever hands them to this code.
            raise UploadRefusedError(WRONG_PURPOSE, status=403)
        try:
            if self.token is not None:
                require_second_factor(user=self.user, action=UPLOAD_ACTION)
            refuse_if_frozen(user=self.user, action=UPLOAD_ACTION)
        except (SecondFactorRequiredError, AccountFrozenError) as error:
            raise UploadRefusedError(error.message, status=403) from None

    def confirm(self) -> None:
        """Refuse (403) what ``check`` refuses, and a token revoked or expired since it was
        presented: read again inside the transaction that publishes, after ``note_use``,
        under locks that serialise with the changes that would stop the upload.

        ``note_use``'s UPDATE of the token's row holds the lock ``revoke_token``'s UPDATE
        takes, and the account's row is locked as freezing it locks it: a revocation or a
        freeze committed before this upload commits is seen here, and one that comes later
        waits for the commit (on SQLite every writing transaction runs alone).
        """
        if self.token is not None:
            token = APIToken.objects.select_related("user").get(pk=self.token.pk)
            try:
                refuse_unusable_token(token)
            except TokenRefusedError as error:
                raise UploadRefusedError(error.message, status=403) from None
        locked = User.objects.select_for_update(no_key=True).filter(pk=self.user.pk)
        list(locked.values_list("pk", flat=True))
        self.check()

    def may_reach(self, normalized_name: str) -> bool:
        """Whether a token's scope reaches the project (the operator's import has none)."""
        return self.token is None or token_allows_project(self.token, normalized_name)

    def out_of_scope(self, name: str) -> UploadRefusedError:
        """The refusal (403) of an upload to project ``name`` that the token does not reach."""
        if self.token is not None and self.token.publisher_id and self.token.project:
            # A publisher's token reaches only the project the publisher was registered for:
            # a workflow trusted for one project must not publish another of the owner's.
            return UploadRefusedError(
                f"This token was minted for a trusted publisher of '{self.token.project.name}' "
                f"and cannot upload to '{name}'. Register a trusted publisher on '{name}' too.",
                status=403,
            )
        return UploadRefusedError(
            f"This API token is limited to another project and cannot upload to '{name}'. Use "
            "a token for this project or for all your projects.", status=403,
        )

    def note_use(self, *, request: HttpRequest | None) -> None:
        """The token's last use and API_TOKEN_USED; nothing for the operator's import."""
        if self.token is not None:
            note_token_use(request=request, token=self.token)
