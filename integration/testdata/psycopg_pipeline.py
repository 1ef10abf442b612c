"""psycopg 3 pipeline mode through pgpseudo (integration/psycopg_test.go).

Prints one line per result: a label, a tab, the rows as JSON.
Usage: psycopg_pipeline.py DSN
"""
import json
import sys

import psycopg

def show(label, rows):
    print(label + "\t" + json.dumps([list(map(str, r)) for r in rows], ensure_ascii=False))

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    with conn.pipeline() as p:
        by_city = [conn.execute("SELECT email, city FROM customers WHERE city = %s ORDER BY created_at LIMIT 2", [c])
                   for c in ("Berlin", "Leipzig")]
        prepared = [conn.execute("SELECT email, religion FROM customers ORDER BY created_at LIMIT 1", prepare=True)
                    for _ in range(3)]
        with conn.cursor() as cur:
            cur.executemany("SELECT %s::int + 1", [(1,), (2,)], returning=True)
            p.sync()
            many = []
            while True:
                many.extend(cur.fetchall())
                if not cur.nextset():
                    break
    for i, c in enumerate(by_city):
        show("city%d" % i, c.fetchall())
    for i, c in enumerate(prepared):
        show("prepared%d" % i, c.fetchall())
    show("many", many)
    # A refused statement fails alone; the pipeline's later statements
    # are skipped as after any error, and the session goes on.
    # The statements after it are checked while the server skips the
    # batch (a parameterised one takes the check's longer path).
    try:
        with conn.pipeline():
            conn.execute("SELECT customer_id FROM customers WHERE religion = 'x'")
            conn.execute("SELECT email FROM customers WHERE city = %s", ["Berlin"])
            conn.execute("SELECT 1")
        show("refused", [["no error"]])
    except psycopg.Error as e:
        show("refused", [[e.sqlstate or "?"]])
    show("after", conn.execute("SELECT count(*) FROM customers").fetchall())
    # Outside pipelines: a binary cursor, a server-side cursor read in
    # pages, a join on the customer token domain, COPY in binary.
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT customer_id, email, religion FROM customers ORDER BY created_at LIMIT 3")
        show("binary", cur.fetchall())
    with conn.transaction():
        with conn.cursor(name="pages") as cur:
            cur.itersize = 4
            cur.execute("SELECT email, city FROM customers ORDER BY created_at")
            show("server_cursor", list(cur))
    show("join", conn.execute("SELECT c.customer_id, count(*) FROM customers c JOIN orders o ON o.customer_id = c.customer_id GROUP BY c.customer_id").fetchall())
    with conn.cursor() as cur:
        with cur.copy("COPY (SELECT customer_id, email FROM customers ORDER BY created_at) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "text"])
            show("copy_binary", list(copy.rows()))
