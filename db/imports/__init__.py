"""Importing orders from files, and linking imported customers to their Telegram identity.

- :func:`import_orders` streams a CSV (or CDNOW) file, validates every row, and bulk-inserts
  customers, orders, products and order lines in one transaction (see :mod:`.orders`).
- :func:`link_customer` gives an imported customer its Telegram user id, merging the
  customer row created by chatting (see :mod:`.linking`).

Nothing here prints or knows Telegram; progress is reported through a callback.
"""

from db.imports.fields import Item, parse_items
from db.imports.linking import LinkError, LinkResult, link_customer
from db.imports.orders import (
    BadRow,
    ImportDatabaseError,
    ImportOptions,
    ImportProgress,
    ImportReport,
    import_orders,
)
from db.imports.rows import CDNOW_PREFIX, CDNOW_SKU
from db.imports.sources import SYNONYMS, ColumnNames, ImportFileError

__all__ = [
    "CDNOW_PREFIX",
    "CDNOW_SKU",
    "SYNONYMS",
    "BadRow",
    "ColumnNames",
    "ImportDatabaseError",
    "ImportFileError",
    "ImportOptions",
    "ImportProgress",
    "ImportReport",
    "Item",
    "LinkError",
    "LinkResult",
    "import_orders",
    "link_customer",
    "parse_items",
]
