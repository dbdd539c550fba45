"""The legacy upload API at /legacy/, as twine speaks it.

twine posts multipart form data with HTTP Basic auth. Every refusal carries its message three
ways: the status, the reason phrase (twine prints "403 Client Error: <reason> for url: …") and
the plain-text body (printed with --verbose).
"""

import base64
import binascii

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from relatch.index.models import APIToken
from relatch.index.tokens.services import (
    TokenRefusedError,
    authenticate_token,
    note_token_refusal,
)
from relatch.index.upload import services
from relatch.index.upload.storage import SizeLimitHandler
from relatch.index.upload.temp_files import is_no_room
from relatch.index.upload.validation import UploadRefusedError
from relatch.web.request_reader import size_limit_message

TOKEN_USERNAME = "__token__"  # noqa: S105  (a user name, not a secret)
MAX_REASON = 300
# Room for the metadata fields around the file (the description can be long).
FORM_ALLOWANCE = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
# Draining a refused body lets the client read our answer instead of a reset connection;
# beyond this the connection is simply dropped.
MAX_DRAIN = 2 * settings.MAX_UPLOAD_SIZE + FORM_ALLOWANCE
NO_ROOM = "The server has no room to receive this upload now; try again later."
# Seconds a client that retries is asked to wait when the server's disk is full: freeing space
# takes an operator, not a moment.
NO_ROOM_RETRY_AFTER = 300
_ASCII = str.maketrans({"…": "...", "‘": "'", "’": "'", "“": '"', "”": '"', "\r": " ", "\n": " "})


@csrf_exempt  # token auth in a header, no cookies: nothing for a forged cross-site form to ride
@login_not_required
def upload(request: HttpRequest) -> HttpResponse:
    """Accept one distribution file from twine (``:action=file_upload``)."""
    if request.method != "POST":
        response = refusal("Upload with POST (for example `twine upload`).", 405)
        response["Allow"] = "POST"
        return response
    token_or_refusal = _token(request)
    if isinstance(token_or_refusal, HttpResponse):
        return _drained(request, token_or_refusal)
    token = token_or_refusal
    try:
        fields, content = _parse_upload(request, token)
    except _NoRoomError:
        # Nothing is recorded: the disk is full, and the account's owner did nothing wrong.
        response = refusal(NO_ROOM, 503)
        response["Retry-After"] = str(NO_ROOM_RETRY_AFTER)
        return response
    except UploadRefusedError as error:
        services.record_refusal(request=request, token=token, message=error.message)
        return _drained(request, refusal(error.message, error.status))
    try:
        published = services.store_upload(
            request=request, token=token, fields=fields, upload=content
        )
    except UploadRefusedError as error:
        return refusal(error.message, error.status)
    finally:
        content.close()
    return HttpResponse(_answer(published), content_type="text/plain; charset=utf-8")


def _answer(published: services.Published) -> str:
    # 200 for a skipped re-upload too: twine (and a re-run CI job) treats it as success.
    if published.skipped:
        return (f"OK: {published.file.filename} is already here with the same contents; "
                "nothing changed.\n")
    return f"OK: stored {published.file.filename}\n"


def refusal(message: str, status: int) -> HttpResponse:
    """A refused request: the message as the reason phrase and as the plain-text body."""
    reason = message.translate(_ASCII).encode("ascii", "replace").decode("ascii")
    return HttpResponse(
        message + "\n", status=status, reason=reason[:MAX_REASON],
        content_type="text/plain; charset=utf-8",
    )


def _token(request: HttpRequest) -> APIToken | HttpResponse:
    """The API token from HTTP Basic auth, or the response that refuses the request."""
    credentials = _basic_credentials(request.META.get("HTTP_AUTHORIZATION", ""))
    if credentials is None:
        return refusal(
            f"No API token: upload with the user name {TOKEN_USERNAME} and an API token as the "
            f"password (create one at {settings.BASE_URL}/account/tokens/).", 403,
        )
    username, password = credentials
    if username != TOKEN_USERNAME:
        # Passwords never upload: a phished password must not be enough to publish code.
        return refusal(
            "Uploading with a user name and password is not accepted. Create an API token at "
            f"{settings.BASE_URL}/account/tokens/ and upload with the user name "
            f"{TOKEN_USERNAME} and the token as the password.", 403,
        )
    try:
        return authenticate_token(raw=password)
    except TokenRefusedError as error:
        note_token_refusal(request=request, refusal=error)
        return refusal(error.message, 403)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class _NoRoomError(Exception):
    """The temporary file of the upload could not be written: the disk or the quota is full."""


def _parse_upload(request: HttpRequest, token: APIToken) -> tuple[QueryDict, UploadedFile]:
    """The form fields and the file, streamed to a temporary file by Django's handlers.

    Refused before the body is read: a token without a second factor, and a Content-Length
    past the limit (so nothing is written to disk for them). _NoRoomError when the disk is
    full (the handler has removed its partial file already).
    """
    services.check_uploader(token=token)
    if _content_length(request) > settings.MAX_UPLOAD_SIZE + FORM_ALLOWANCE:
        raise UploadRefusedError(size_limit_message(), 413)
    limit = SizeLimitHandler(request)
    request.upload_handlers = [limit, *request.upload_handlers]
    try:
        fields, files = request.POST, request.FILES
    except (SuspiciousOperation, MultiPartParserError) as error:
        raise UploadRefusedError(f"The upload is not a valid multipart form: {error}") from None
    except OSError as error:
        # A full disk is a state of the server, for a while: 503, not a 500 (issue 18 §10).
        # Any other failure to write is a fault the operator must see, so it stays a 500.
        if is_no_room(error):
            raise _NoRoomError from error
        raise
    if limit.exceeded:
        raise UploadRefusedError(size_limit_message(), 413)
    content = files.get("content")
    if content is None:
        raise UploadRefusedError("The upload has no file: send it in the 'content' field.")
    return fields, content


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _drained(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Read and drop what is left of the body (bounded), so the client reads the answer."""
    if getattr(request, "_read_started", True) or _content_length(request) > MAX_DRAIN:
        return response
    while request.read(64 * 1024):
        pass
    return response
