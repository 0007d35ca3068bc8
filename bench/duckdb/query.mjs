// query.mjs: run one SQL statement in an in-memory DuckDB (all cores) and
// print each result row as one JSON object per line (the same shape as
// `keyless audit query --output json`), for bench/query.sh.
//
//   node query.mjs 'SELECT ...'
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs SQL');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const reader = await connection.runAndReadAll(sql);
const out = [];
for (const row of reader.getRowObjectsJson()) {
  out.push(JSON.stringify(row));
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
