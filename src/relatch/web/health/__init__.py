"""What every app may record for operators: the metric instruments, the request timer and the
worker's heartbeat. Low in the import order (inside ``relatch.web``) so that the response cache
(index), security events (audit) and the worker (notify) can count without importing the apps
above them; the endpoints that read all of it are ``relatch.ops``.
"""
