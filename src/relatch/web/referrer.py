"""The Referrer-Policy of pages whose URL holds a secret (a mail link's token, a status link)."""

from django.http import HttpResponse

PRIVATE_URL_POLICY = "strict-origin"


def keep_url_out_of_referrers(response: HttpResponse) -> HttpResponse:
    """Other sites, and our own subresource requests, learn the origin only, never the path that
    holds the token (OWASP FP5).

    Not "no-referrer": under it browsers send ``Origin: null`` with the page's own form posts,
    and the CSRF check then refuses them, so the person cannot press the page's button.
    """
    response.headers["Referrer-Policy"] = PRIVATE_URL_POLICY
    return response
