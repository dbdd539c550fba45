"""Why a token exchange was refused, in PyPI's words: a code and a description for CI's log."""

from relatch.web.refusals import Refusal


class ExchangeRefusedError(Refusal):
    """The OIDC token was not exchanged; no upload token exists. ``code`` is one of PyPI's
    (``invalid-payload``, ``invalid-token``, ``invalid-publisher``,
    ``invalid-pending-publisher``, ``not-enabled``); ``message`` is what CI prints, so it says
    precisely what to fix and never echoes a secret."""

    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def invalid_token(message: str) -> ExchangeRefusedError:
    return ExchangeRefusedError("invalid-token", message)


def invalid_publisher(message: str) -> ExchangeRefusedError:
    return ExchangeRefusedError("invalid-publisher", message)
