"""An expression compared and sorted by its bytes, the same way on PostgreSQL and SQLite.

A username prefix is a range in byte order ("ABC" <= name < "ABD"), but not in a linguistic
collation such as en_US, where punctuation is ignored at first: there "AB-X" sorts after
"AB." and a prefix range would miss it. The database's collation is the operator's choice, so
the staff user search asks for byte order explicitly, and its index is built in byte order too.
"""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Expression, Func
from django.db.models.sql.compiler import SQLCompiler


class ByteOrder(Func):
    """``expression COLLATE "C"`` on PostgreSQL, ``COLLATE "BINARY"`` (its byte order) on SQLite.

    Not a subclass of Django's Collate: an index treats a Collate as a wrapper of its column and
    refuses subclasses of it.
    """

    template = '%(expressions)s COLLATE "C"'
    output_field = CharField()

    def __init__(self, expression: Expression | str) -> None:
        super().__init__(expression)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, Any]:
        # SQLite has no collation named C; BINARY (memcmp of UTF-8) is the same order.
        return super().as_sql(
            compiler, connection, template='%(expressions)s COLLATE "BINARY"', **extra_context
        )
