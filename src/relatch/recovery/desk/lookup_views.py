"""The desk's user search page, /desk/users/ (issue 7 §1).

Staff only, with a second factor, like every desk page (``views.staff_only``): anyone else
gets the desk's 404. Reading changes nothing, so no StaffAction row is written.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from relatch.recovery.desk import lookup
from relatch.recovery.desk.forms import UserSearchForm
from relatch.recovery.desk.views import staff_only


@staff_only
@require_GET
def users(request: HttpRequest) -> HttpResponse:
    """Find accounts by exact username, exact address or the start of a username."""
    form = UserSearchForm(request.GET or None)
    # An invalid query (too long, control characters) is answered by the form alone: it never
    # reaches the database.
    query = form.cleaned_data["q"] if form.is_bound and form.is_valid() else ""
    return render(request, "recovery/desk/users.html", {
        "form": form, "query": query,
        "matches": lookup.find_accounts(query) if query else None,
        "max_results": lookup.MAX_RESULTS, "min_prefix": lookup.MIN_PREFIX,
    })
