"""SQL is parameterised everywhere: values go to the driver as parameters, never into the
SQL text. Dynamic SQL text (an f-string holding SQL) is allowed only in the reviewed places
below, which interpolate identifiers, placeholders or fragments built from constants; a new
one fails this test until it is reviewed and listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "db", "analytics", "nlp")
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|PRAGMA|WHERE|CREATE|DROP)\b")

# (file, function): what it interpolates. Values are bound as parameters in all of them.
REVIEWED = {
    ("bot/demo/shop.py", "_advance_sequences"): "table names from a constant list",
    ("db/analytics_queries.py", "conversation_aggregates"): "dialect-specific expressions",
    ("db/analytics_queries.py", "interaction_aggregates"): "dialect-specific expressions",
    ("db/analytics_queries.py", "message_sentiments"): "dialect-specific expressions",
    ("db/analytics_queries.py", "order_aggregates"): "placeholders and a date condition",
    ("db/analytics_queries.py", "purchase_summary"): "dialect-specific expressions",
    ("db/analytics_queries.py", "survey_answers"): "dialect-specific expressions",
    ("db/bulk.py", "insert_rows"): "table and column names from the models, placeholders",
    ("db/imports/writers.py", "_rollback_journal"): "PRAGMA names and integer values",
    ("db/imports/writers.py", "begin"): "PRAGMA names and integer values",
    ("db/imports/writers.py", "create_products"): "dialect-specific JSON expressions",
    ("db/imports/writers.py", "defer_indexes"): "index and table names read from the schema",
    ("db/imports/writers.py", "delete_orderless_customers"): "dialect-specific expressions",
    ("db/imports/writers.py", "existing_orders"): "dialect-specific JSON expressions",
    ("db/imports/writers.py", "find_ids"): "dialect-specific JSON expressions",
    ("db/imports/writers.py", "insert_lines"): "dialect-specific JSON expressions",
    ("db/imports/writers.py", "max_id"): "a table name from a constant",
    ("db/imports/writers.py", "restore"): "PRAGMA names and integer values",
    ("db/imports/writers.py", "set_seen_from_orders"): "dialect-specific expressions",
    ("db/imports/writers.py", "write_chunk"): "validated currency/status literals, JSON paths",
}


def dynamic_sql_sites() -> set[tuple[str, str]]:
    sites = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if _formats_sql(node):
                        sites.add((path.relative_to(ROOT).as_posix(), func.name))
    return sites


def _formats_sql(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value
            for v in node.values
            if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
        return bool(SQL.search(text)) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):  # "..." % values
        left = node.left
        return isinstance(left, ast.Constant) and bool(SQL.search(str(left.value)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):  # "...".format()
        target = node.func.value
        return (
            node.func.attr == "format"
            and isinstance(target, ast.Constant)
            and bool(SQL.search(str(target.value)))
        )
    return False


def test_dynamic_sql_text_is_only_in_reviewed_places():
    unreviewed = dynamic_sql_sites() - set(REVIEWED)
    assert not unreviewed, f"SQL built with string formatting, not reviewed: {sorted(unreviewed)}"


def test_the_review_list_has_no_stale_entries():
    assert set(REVIEWED) <= dynamic_sql_sites()


def test_the_scanner_finds_formatted_sql():
    assert _formats_sql(ast.parse('f"SELECT * FROM t WHERE name = {name}"').body[0].value)
    assert _formats_sql(ast.parse('"DELETE FROM t WHERE id = %s" % x').body[0].value)
    assert not _formats_sql(ast.parse('f"Hello {name}"').body[0].value)
