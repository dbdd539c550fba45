"""The authentication backend: which account a name or address means, and its password.

Only the backend lives here; the sign-in pages and steps belong to the sign-in app. This
package keeps its name because Django stores the backend's dotted path in every signed-in session
(``settings.AUTHENTICATION_BACKENDS``): moving it would sign everyone out.
"""
