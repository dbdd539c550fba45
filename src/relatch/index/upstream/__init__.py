"""The upstream index behind Relatch's own URL (issue 20 §2).

A project name with no local project is served from the upstream (``settings.UPSTREAM_URL``,
PyPI's simple API by default): its page is fetched with its ETag and kept
(``UpstreamPage``) for ``UPSTREAM_PAGE_SECONDS``, and its files are fetched once, on first
request, checked against the page's SHA-256 and stored like local files (``UpstreamFile``),
so later installs need no upstream. A name that exists locally never consults the upstream
(the dependency-confusion rule); ``reserve_name`` makes an empty local project for that.

- ``client``: the HTTP primitive (httpx): bounded reads, http(s) only, credentials redacted.
- ``pages``: reading the upstream's PEP 691 JSON or PEP 503 HTML into kept page data.
- ``documents``: the pages Relatch serves from kept data, with links to Relatch.
- ``services``: keeping pages, fetching and storing files, reserving names.
- ``views``: what the installer views call where a name or path is not local.
"""
