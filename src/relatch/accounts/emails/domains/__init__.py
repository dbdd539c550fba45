"""Domain checks over RDAP (issue 17): an address whose domain lapsed, or was registered again
after the address was verified, is no longer its owner's, and is unverified.

- ``providers``: the large mail providers' domains (and special-use names), never looked up;
- ``rdap``: the RDAP client (RFC 9224 bootstrap, RFC 9083 answers) on httpx;
- ``checks``: a pass over the domains that are due, and what it does with the answers;
- ``tasks``: the daily background pass, queued by the recovery tick.

``relatch check_email_domains`` runs a pass by hand; docs/operations.md explains it.
"""
