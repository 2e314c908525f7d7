import fc from 'fast-check';
import { incompatibilities } from '../../src/drivers/database/compat.js';
import { SqlSyntaxError, splitStatements } from '../../src/drivers/database/sql-split.js';

const SAFE = [
  'CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL)',
  'ALTER TABLE orders ADD COLUMN channel text',
  'ALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0',
  'ALTER TABLE IF EXISTS orders ADD COLUMN IF NOT EXISTS tags text[]',
  'CREATE INDEX orders_created_idx ON orders (created_at)',
  'CREATE VIEW orders_v2 AS SELECT id, channel FROM orders',
  "COMMENT ON TABLE orders IS 'we DROP COLUMN nothing here'",
  "INSERT INTO settings (k, v) VALUES ('mode', 'fast')",
  "UPDATE orders SET channel = 'web' WHERE channel IS NULL",
  'ALTER TABLE orders ALTER COLUMN note DROP NOT NULL',
  'ALTER TABLE orders ALTER COLUMN note SET DEFAULT $$x$$',
  'ALTER TABLE orders DROP CONSTRAINT orders_note_check',
  'DROP INDEX IF EXISTS orders_old_idx',
  'CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN DROP TABLE x; RETURN 1; END $fn$ LANGUAGE plpgsql',
  'GRANT SELECT ON orders_v2 TO reporting',
];

const BREAKING: [string, RegExp][] = [
  ['DROP TABLE orders', /drops a table/],
  ['ALTER TABLE orders DROP COLUMN note', /drops a column/],
  ['ALTER TABLE orders DROP note', /drops a column/],
  ['ALTER TABLE orders RENAME COLUMN note TO remark', /renames/],
  ['ALTER TABLE orders RENAME TO purchases', /renames/],
  ['ALTER TABLE orders ALTER COLUMN qty TYPE bigint', /changes a column type/],
  ['ALTER TABLE orders ALTER qty SET DATA TYPE numeric', /changes a column type/],
  ['ALTER TABLE orders ADD COLUMN region text NOT NULL', /NOT NULL column without a default/],
  ['ALTER TABLE orders ALTER COLUMN channel SET NOT NULL', /makes a column NOT NULL/],
  ['ALTER TABLE orders ALTER COLUMN channel DROP DEFAULT', /drops a default/],
  ['ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0)', /adds a constraint/],
  ['ALTER TABLE orders ADD UNIQUE (ref)', /adds a constraint/],
  ['ALTER TABLE orders ADD COLUMN ref text UNIQUE', /constraint/],
  ['CREATE UNIQUE INDEX orders_ref ON orders (ref)', /unique index/],
  ['TRUNCATE orders', /deletes every row/],
  ['DELETE FROM orders', /deletes every row/],
  ['DROP VIEW orders_v1', /drops a view/],
  ['ALTER VIEW orders_v1 RENAME TO v', /renames a view/],
  ['CREATE OR REPLACE VIEW orders_v1 AS SELECT 1', /replaces a view/],
  ['CREATE INDEX CONCURRENTLY i ON orders (x)', /cannot run inside/],
  ['BEGIN', /controls the transaction/],
  ['COMMIT', /controls the transaction/],
  ['alter table "Orders" drop column "Note"', /drops a column/],
];

describe('examples', () => {
  test.each(SAFE)('accepted: %s', (sql) => expect(incompatibilities(`${sql};`)).toEqual([]));
  test.each(BREAKING)('refused: %s', (sql, why) => {
    const found = incompatibilities(`${sql};`);
    expect(found).toHaveLength(1);
    expect(found[0]!.reason).toMatch(why);
  });

  test('every breaking action in a multi-action ALTER counts', () => {
    expect(incompatibilities('ALTER TABLE t ADD COLUMN a int, DROP COLUMN b;')[0]!.reason).toMatch(
      /drops a column/,
    );
  });

  test('broken SQL is a syntax error, not a pass', () => {
    expect(() => incompatibilities("INSERT INTO t VALUES ('unterminated);")).toThrow(
      SqlSyntaxError,
    );
    expect(() => incompatibilities('/* never closed')).toThrow(SqlSyntaxError);
    expect(() => incompatibilities('CREATE FUNCTION f() AS $x$ body')).toThrow(SqlSyntaxError);
  });
});

const ws = fc.constantFrom(
  ' ',
  '\n',
  '\t',
  '\n\n',
  ' -- a comment\n',
  ' /* note */ ',
  ' /* nested /* c */ */ ',
);

describe('properties', () => {
  test('a script of safe statements passes, whatever whitespace and comments surround them', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...SAFE), ws), { maxLength: 12 }), (parts) => {
        const sql = parts.map(([s, w]) => `${w}${s};${w}`).join('');
        expect(incompatibilities(sql)).toEqual([]);
      }),
    );
  });

  test('one breaking statement anywhere is found, on its own line', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...SAFE), { maxLength: 8 }),
        fc.nat(),
        fc.constantFrom(...BREAKING),
        (safe, at, [bad]) => {
          const pos = at % (safe.length + 1);
          const stmts = [...safe.slice(0, pos), bad, ...safe.slice(pos)];
          const found = incompatibilities(stmts.map((s) => `${s};`).join('\n'));
          expect(found).toHaveLength(1);
          expect(found[0]!.line).toBe(pos + 1);
        },
      ),
    );
  });

  test('breaking words inside comments, strings and dollar bodies are not statements', () => {
    fc.assert(
      fc.property(fc.constantFrom(...BREAKING), ([bad]) => {
        const hidden = [
          `-- ${bad};\nSELECT 1;`,
          `/* ${bad}; */ SELECT 1;`,
          `SELECT '${bad.replaceAll("'", "''")};';`,
          `DO $$ BEGIN EXECUTE '${bad.replaceAll("'", "''")}'; END $$;`,
          `CREATE FUNCTION g() RETURNS void AS $body$ ${bad}; $body$ LANGUAGE sql;`,
        ];
        for (const sql of hidden) expect(incompatibilities(sql)).toEqual([]);
      }),
    );
  });

  test('splitting keeps every statement and its starting line', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...SAFE), { minLength: 1, maxLength: 10 }), (stmts) => {
        const split = splitStatements(stmts.map((s) => `${s};`).join('\n'));
        expect(split.map((s) => s.text)).toEqual(stmts);
        expect(split.map((s) => s.line)).toEqual(stmts.map((_, i) => i + 1));
      }),
    );
  });
});
