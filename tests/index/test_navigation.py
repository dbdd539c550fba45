"""Maintainers can find publishing from their account: projects, tokens, public page."""

from django.urls import reverse


def test_account_page_and_header_lead_to_publishing(signed_in, user):
    page = signed_in.get(reverse("account:overview")).content.decode()
    links = (("manage:projects", []), ("tokens:list", []), ("pages:user", [user.username]))
    for name, args in links:
        assert f'href="{reverse(name, args=args)}"' in page
    home = signed_in.get(reverse("home")).content.decode()
    assert f'href="{reverse("manage:projects")}"' in home
