"""Domains the RDAP check never looks up: the large mail providers, and names nobody can hold.

Why a list. The check exists for custom domains, which lapse when one person forgets to renew
them (the ``ctx`` takeover on PyPI in 2022 began so). The domains below are registered and
renewed by the companies that run the mailboxes; one lapsing would be news the world over, not
something a weekly lookup finds first. They also hold most addresses, so looking them up would
put most of the load on the registries for no information. Subdomains of a listed domain are
skipped too (the provider holds them).

Each name is spelled out: ``gmx.*`` and ``yandex.*`` are listed country by country, because a
wildcard would also skip, say, ``gmx.xyz``, which anyone may register. An operator who wants a
domain looked up that is listed here (or not looked up that is not) changes this list; a
domain missing from it costs one lookup a week, nothing more.
"""

LARGE_PROVIDERS: frozenset[str] = frozenset({
    # Google
    "gmail.com", "googlemail.com",
    # Microsoft
    "outlook.com", "outlook.de", "outlook.fr", "outlook.es", "outlook.it", "outlook.jp",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es",
    "live.com", "live.co.uk", "live.fr", "live.de", "live.nl", "live.it", "msn.com",
    # Yahoo and AOL
    "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.ca",
    "yahoo.in", "yahoo.co.jp", "yahoo.com.br", "ymail.com", "rocketmail.com",
    "aol.com", "aim.com",
    # Apple
    "icloud.com", "me.com", "mac.com",
    # Proton
    "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
    # GMX, WEB.DE and other German providers
    "gmx.com", "gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.fr", "gmx.us", "gmx.co.uk",
    "web.de", "t-online.de", "freenet.de", "posteo.de", "posteo.net", "mailbox.org",
    # Yandex, Mail.ru, Rambler
    "yandex.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "yandex.com.tr", "ya.ru",
    "mail.ru", "bk.ru", "inbox.ru", "list.ru", "rambler.ru",
    # Tencent, NetEase, Sina, Sohu, Alibaba
    "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com",
    "aliyun.com",
    # Korea
    "naver.com", "daum.net", "hanmail.net",
    # Fastmail, Zoho, Tuta, HEY
    "fastmail.com", "fastmail.fm", "zoho.com", "zohomail.com", "tutanota.com", "tutanota.de",
    "tuta.io", "tuta.com", "hey.com",
    # Large national and access providers
    "orange.fr", "free.fr", "laposte.net", "libero.it", "seznam.cz", "wp.pl", "o2.pl",
    "interia.pl", "rediffmail.com", "comcast.net", "verizon.net", "att.net", "sbcglobal.net",
    "btinternet.com",
})

# Special-use names (RFC 2606, RFC 6761): no registry hands them out, so nobody can let them
# lapse or register them again. Addresses on them are test or demo data.
RESERVED_TLDS: frozenset[str] = frozenset({"test", "example", "invalid", "localhost", "local"})
RESERVED_DOMAINS: frozenset[str] = frozenset({"example.com", "example.net", "example.org"})


def _within(domain: str, names: frozenset[str]) -> bool:
    labels = domain.split(".")
    return any(".".join(labels[i:]) in names for i in range(len(labels)))


def is_large_provider(domain: str) -> bool:
    """Whether ``domain`` (lower case) is a listed provider's, or a subdomain of one."""
    return _within(domain, LARGE_PROVIDERS)


def never_looked_up(domain: str) -> bool:
    """Whether the check leaves ``domain`` alone: a large provider's, a special-use name, an
    address literal (``[192.0.2.1]``) or a name of one label, which no registry answers for."""
    if not domain or domain.startswith("[") or "." not in domain:
        return True
    if domain.rsplit(".", 1)[1] in RESERVED_TLDS or _within(domain, RESERVED_DOMAINS):
        return True
    return is_large_provider(domain)
