"""psqlODBC (driven by pyodbc) through pgpseudo (integration/odbc_test.go).

Prints one line per result: a label, a tab, the rows as JSON (every value
a string, NULL as null; non-ASCII characters as they are).
Usage: odbc_probe.py CONNECTION-STRING
The connection string is DSN-less (Driver=…;Server=…); the cursor probe
adds UseDeclareFetch=1 to it.
"""
import json
import sys

import pyodbc

TOKENS = "SELECT customer_id, full_name, email, city, religion FROM customers"
JOIN = ("SELECT c.customer_id, count(*) AS n FROM orders o"
        " JOIN customers c ON c.customer_id = o.customer_id GROUP BY c.customer_id")
REFUSED = "SELECT customer_id FROM customers WHERE religion = 'x'"
AFTER = "SELECT count(*) FROM customers"
BY_CITY = "SELECT customer_id, email, city FROM customers WHERE city = ?"


def show(label, rows):
    print(label + "\t" + json.dumps([[None if v is None else str(v) for v in r] for r in rows], ensure_ascii=False),
          flush=True)


def main(connstr):
    conn = pyodbc.connect(connstr, autocommit=True)
    cur = conn.cursor()
    show("tokens", cur.execute(TOKENS).fetchall())
    show("join", cur.execute(JOIN).fetchall())
    # A parameterised query: psqlODBC prepares it on the server
    # (UseServerSidePrepare, its default) and binds the parameter; the
    # same statement again with another value.
    for city in ("Berlin", "Leipzig"):
        show("param." + city, cur.execute(BY_CITY, city).fetchall())
    try:
        rows = cur.execute(REFUSED).fetchall()
        show("refused", [["no error", rows]])
    except pyodbc.Error as e:
        # args: the ODBC SQLSTATE (psqlODBC passes the server's on) and the
        # driver's message.
        show("refused", [[e.args[0], e.args[1] if len(e.args) > 1 else ""]])
    show("after", cur.execute(AFTER).fetchall())
    conn.close()

    # UseDeclareFetch=1: psqlODBC runs the query as DECLARE … CURSOR in a
    # transaction and FETCHes Fetch rows at a time.
    conn = pyodbc.connect(connstr + ";UseDeclareFetch=1;Fetch=7", autocommit=False)
    cur = conn.cursor()
    show("declarefetch", cur.execute(TOKENS).fetchall())
    show("declarefetch.param", cur.execute(BY_CITY, "Berlin").fetchall())
    conn.commit()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
