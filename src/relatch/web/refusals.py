"""The one type of a refused action: nothing changed, ``message`` says why in words for the
person, ``status`` is the HTTP status it is answered with.

The services' own error classes (``DeskRefusedError``, ``ProofError``, ``RequesterError``,
``TokenError``, ...) subclass it, each with its default status; pages show ``message`` where
they like, and the JSON API maps every ``Refusal`` once (``relatch.api.api``) to
``{"detail": message}`` with ``status``. ``web`` is the lowest app: everyone may import this.
"""


class Refusal(Exception):  # noqa: N818 (the one base of every refusal, named by issue 16)
    """A refused action; ``message`` says why, plainly. Nothing was changed."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
