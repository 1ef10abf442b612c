"""psycopg2, SQLAlchemy and pandas through pgpseudo (integration/pyclients_test.go).

Prints one line per result: a label, a tab, the rows as JSON (every value
a string, NULL as null; non-ASCII characters as they are, so that the
test's leak check sees them).
Usage: pyclients.py psycopg2|sqlalchemy|pandas DSN
"""
import csv
import io
import json
import math
import sys

# The statements every client runs (the test knows them by label).
TOKENS = "SELECT customer_id, full_name, email, city, religion FROM customers"
JOIN = ("SELECT c.customer_id, count(*) AS n FROM orders o"
        " JOIN customers c ON c.customer_id = o.customer_id GROUP BY c.customer_id")
REFUSED = "SELECT customer_id FROM customers WHERE religion = 'x'"
AFTER = "SELECT count(*) FROM customers"


def cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def show(label, rows):
    print(label + "\t" + json.dumps([[cell(v) for v in r] for r in rows], ensure_ascii=False), flush=True)


def refusal(label, exc):
    """Prints the SQLSTATE and message of the server error behind exc."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    code = getattr(orig, "pgcode", None)
    msg = (getattr(orig, "pgerror", None) or str(orig)).strip()
    show(label, [[code, msg]])


def run_psycopg2(dsn):
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(TOKENS)
    show("tokens", cur.fetchall())
    cur.execute(JOIN)
    show("join", cur.fetchall())

    # A named cursor is a server-side cursor: DECLARE in a transaction,
    # then FETCH FORWARD itersize at a time while iterating.
    conn.autocommit = False
    named = conn.cursor(name="probe_cur")
    named.itersize = 7
    named.execute("SELECT customer_id, email, religion FROM customers")
    rows = list(named)
    named.close()
    conn.commit()
    show("named", rows)
    conn.autocommit = True

    buf = io.StringIO()
    cur.copy_expert("COPY (SELECT customer_id, full_name, email, city, religion FROM customers) TO STDOUT WITH CSV", buf)
    # An unquoted empty field is NULL in CSV.
    show("copy", [[None if f == "" else f for f in r] for r in csv.reader(io.StringIO(buf.getvalue()))])

    try:
        cur.execute(REFUSED)
        show("refused", [["no error", cur.fetchall()]])
    except psycopg2.Error as e:
        refusal("refused", e)
    cur.execute(AFTER)
    show("after", cur.fetchall())
    conn.close()


def engine_for(dsn):
    import psycopg2
    import sqlalchemy

    return sqlalchemy.create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn))


def run_sqlalchemy(dsn):
    import sqlalchemy as sa

    engine = engine_for(dsn)
    insp = sa.inspect(engine)
    show("tables", [[n] for n in sorted(insp.get_table_names())])
    show("columns", [[c["name"], str(c["type"]), str(c["nullable"])] for c in insp.get_columns("customers")])

    md = sa.MetaData()
    customers = sa.Table("customers", md, autoload_with=engine)
    orders = sa.Table("orders", md, autoload_with=engine)
    with engine.connect() as conn:
        show("tokens", conn.execute(sa.select(customers.c.customer_id, customers.c.full_name, customers.c.email,
                                              customers.c.city, customers.c.religion)).all())
        j = customers.join(orders, orders.c.customer_id == customers.c.customer_id)
        q = (sa.select(customers.c.customer_id, sa.func.count().label("n"))
             .select_from(j).group_by(customers.c.customer_id))
        show("join", conn.execute(q).all())
        # Core's comparison with a bound parameter (rendered by psycopg2
        # into the statement text).
        try:
            rows = conn.execute(sa.select(customers.c.customer_id).where(customers.c.religion == "x")).all()
            show("refused", [["no error", rows]])
        except sa.exc.DBAPIError as e:
            refusal("refused", e)
        show("after", conn.execute(sa.select(sa.func.count()).select_from(customers)).all())


def run_pandas(dsn):
    import pandas as pd
    import sqlalchemy as sa

    engine = engine_for(dsn)

    def frame(label, df):
        show(label + ".dtypes", [[c, str(t)] for c, t in df.dtypes.items()])
        show(label, df.itertuples(index=False, name=None))

    frame("tokens", pd.read_sql(TOKENS, engine))
    frame("join", pd.read_sql(JOIN, engine))
    frame("bycity", pd.read_sql(sa.text("SELECT customer_id, email, city FROM customers WHERE city = :city"),
                                engine, params={"city": "Berlin"}))
    with engine.connect() as conn:
        try:
            df = pd.read_sql(REFUSED, conn)
            show("refused", [["no error", len(df)]])
        except sa.exc.DBAPIError as e:
            refusal("refused", e)
        frame("after", pd.read_sql(AFTER, conn))


if __name__ == "__main__":
    {"psycopg2": run_psycopg2, "sqlalchemy": run_sqlalchemy, "pandas": run_pandas}[sys.argv[1]](sys.argv[2])
