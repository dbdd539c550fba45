""""Add a second address" (issue 17, prevention): the most common way people lose an account
on a package index is that the one address they signed up with stopped working, and they
noticed only when they needed a reset.

An account whose mail reaches only one verified address sees a banner on its account page
(``queries.second_address_prompt``), with a link to add an address and a "Not now" that hides
it for a year (``services.dismiss_prompt``). The daily pass (``services.remind_second_address``,
queued by the recovery tick through ``tasks.ensure_second_address_reminders_scheduled``) mails
it every 90 days until it has a second address or dismissed the prompt. An address on a
domain of its own (not one of the large mail providers) is the riskier case: a lapsed domain
can be registered again by anyone, who then receives the account's password resets; the
banner and the mail say so.
"""
