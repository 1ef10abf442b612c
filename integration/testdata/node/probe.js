// node-postgres (pg) through pgpseudo (integration/node_test.go).
//
// Prints one line per result: a label, a tab, the rows as JSON (every
// value a string, NULL as null).
// Usage: node probe.js '{"host":…,"port":…,"user":…,"password":…,"database":…}'
'use strict';
const { Client, Pool } = require('pg');

const TOKENS = 'SELECT customer_id, full_name, email, city, religion FROM customers';
const JOIN = 'SELECT c.customer_id, count(*) AS n FROM orders o' +
  ' JOIN customers c ON c.customer_id = o.customer_id GROUP BY c.customer_id';
const REFUSED = "SELECT customer_id FROM customers WHERE religion = 'x'";
const AFTER = 'SELECT count(*) FROM customers';
const BY_CITY = 'SELECT customer_id, email, city FROM customers WHERE city = $1';

// TLS required, the certificate not verified: libpq's sslmode=require.
const config = { ...JSON.parse(process.argv[2]), ssl: { rejectUnauthorized: false } };

function show(label, rows) {
  console.log(label + '\t' + JSON.stringify(rows.map((r) => r.map((v) => (v === null ? null : String(v))))));
}

// rows runs a query (text or config) and returns its rows as arrays.
async function rows(q, query) {
  const res = await q.query(typeof query === 'string' ? { text: query, rowMode: 'array' } : { ...query, rowMode: 'array' });
  return res.rows;
}

async function refusal(label, q) {
  try {
    show(label, [['no error', JSON.stringify(await rows(q, REFUSED))]]);
  } catch (e) {
    show(label, [[e.code === undefined ? null : e.code, e.message]]);
  }
}

async function main() {
  const client = new Client(config);
  await client.connect();
  // A query without values: the simple query protocol.
  show('tokens', await rows(client, TOKENS));
  show('join', await rows(client, JOIN));
  // A named prepared statement: parsed once, bound and executed twice.
  for (const city of ['Berlin', 'Leipzig']) {
    show('named.' + city, await rows(client, { name: 'q1', text: BY_CITY, values: [city] }));
  }
  await refusal('refused', client);
  show('after', await rows(client, AFTER));
  // The named statement still works after the refusal.
  show('named.after', await rows(client, { name: 'q1', text: BY_CITY, values: ['Berlin'] }));
  await client.end();

  const pool = new Pool({ ...config, max: 3 });
  const [join, tokens, berlin] = await Promise.all([
    rows(pool, JOIN), rows(pool, TOKENS), rows(pool, { text: BY_CITY, values: ['Berlin'] }),
  ]);
  show('pool.join', join);
  show('pool.tokens', tokens);
  show('pool.Berlin', berlin);
  show('pool.connections', [[pool.totalCount]]);
  // A refusal on a pooled connection, and that connection afterwards.
  const pc = await pool.connect();
  try {
    await refusal('pool.refused', pc);
    show('pool.after', await rows(pc, AFTER));
  } finally {
    pc.release();
  }
  await pool.end();
}

main().catch((e) => {
  console.error('probe.js:', e.code || '', e.message);
  process.exit(1);
});
