// Backward compatibility of schema migrations (task list 2.6.2). During a
// rolling upgrade the OLD application keeps running against the database
// after the migrations ran (the master is upgraded last), so a migration may
// only add: new tables, nullable or defaulted columns, indexes, views. This
// check reads the migration and refuses what would break the old version,
// naming the statement, its line and the reason. It is deliberately strict:
// a false refusal costs a package rebuild, a false pass costs an outage.
import { type Statement, splitStatements } from './sql-split.js';

export interface Incompatibility {
  readonly line: number;
  readonly statement: string;
  readonly reason: string;
}

const has = (w: readonly string[], ...seq: string[]) => indexOfSeq(w, seq) >= 0;

function indexOfSeq(w: readonly string[], seq: readonly string[], from = 0): number {
  outer: for (let i = from; i <= w.length - seq.length; i++) {
    for (let k = 0; k < seq.length; k++) if (w[i + k] !== seq[k]) continue outer;
    return i;
  }
  return -1;
}

/** Splits "ALTER TABLE t a, b, c" into its comma-separated actions (outside parentheses). */
function alterActions(words: readonly string[]): string[][] {
  const actions: string[][] = [[]];
  let depth = 0;
  for (const w of words) {
    if (w === '(') depth++;
    if (w === ')') depth--;
    if (w === ',' && depth === 0) actions.push([]);
    else actions[actions.length - 1]!.push(w);
  }
  return actions;
}

function columnDefinitionProblem(def: readonly string[]): string | null {
  const notNull = has(def, 'NOT', 'NULL');
  const hasDefault =
    def.includes('DEFAULT') ||
    def.includes('GENERATED') ||
    def.includes('SERIAL') ||
    def.includes('BIGSERIAL');
  if (notNull && !hasDefault)
    return 'adds a NOT NULL column without a default: the old version inserts rows without it';
  if (
    def.includes('PRIMARY') ||
    def.includes('UNIQUE') ||
    def.includes('REFERENCES') ||
    def.includes('CHECK')
  ) {
    return 'adds a column with a constraint that rows written by the old version may violate';
  }
  return null;
}

function checkAlterTable(words: readonly string[]): string | null {
  // ALTER TABLE [IF EXISTS] [ONLY] name [*] action [, action ...]
  let i = 2;
  if (words[i] === 'IF' && words[i + 1] === 'EXISTS') i += 2;
  if (words[i] === 'ONLY') i++;
  i++; // the table name
  while (words[i] === '.') i += 2; // schema-qualified
  if (words[i] === '*') i++;
  for (const action of alterActions(words.slice(i))) {
    if (action.includes('RENAME'))
      return 'renames a table, column or constraint the old version uses';
    if (action[0] === 'DROP' || (action.includes('DROP') && !action.includes('ALTER'))) {
      if (has(action, 'DROP', 'CONSTRAINT')) continue; // loosening is compatible
      return 'drops a column the old version may read or write';
    }
    if (has(action, 'TYPE') && action.includes('ALTER'))
      return 'changes a column type the old version relies on';
    if (has(action, 'SET', 'NOT', 'NULL'))
      return 'makes a column NOT NULL: the old version may insert rows without it';
    if (has(action, 'DROP', 'DEFAULT'))
      return 'drops a default the old version relies on when inserting';
    if (has(action, 'DROP', 'NOT', 'NULL')) continue;
    if (
      action[0] === 'ADD' &&
      (action[1] === 'CONSTRAINT' ||
        ['PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'EXCLUDE'].includes(action[1] ?? ''))
    ) {
      return 'adds a constraint that rows written by the old version may violate';
    }
    if (action[0] === 'ADD') {
      const def = action[1] === 'COLUMN' ? action.slice(2) : action.slice(1);
      const problem = columnDefinitionProblem(def);
      if (problem) return problem;
    }
    if (has(action, 'SET', 'SCHEMA')) return 'moves a table to another schema';
  }
  return null;
}

export function statementProblem(s: Statement): string | null {
  const w = s.words;
  const head = w[0];
  if (
    head === 'BEGIN' ||
    head === 'COMMIT' ||
    head === 'ROLLBACK' ||
    head === 'END' ||
    (head === 'START' && w[1] === 'TRANSACTION')
  ) {
    return 'controls the transaction itself; pairshift runs every migration in one transaction';
  }
  if (head === 'DROP') {
    if (w[1] === 'INDEX' || w[1] === 'CONSTRAINT') return null;
    return `drops a ${w[1]?.toLowerCase() ?? 'object'} the old version may use`;
  }
  if (head === 'TRUNCATE') return 'deletes every row of a table';
  if (head === 'DELETE' && !w.includes('WHERE')) return 'deletes every row of a table';
  if (head === 'ALTER' && w[1] === 'TABLE') return checkAlterTable(w);
  if (
    head === 'ALTER' &&
    ['VIEW', 'SEQUENCE', 'SCHEMA', 'FUNCTION', 'TYPE'].includes(w[1] ?? '') &&
    w.includes('RENAME')
  ) {
    return `renames a ${w[1]!.toLowerCase()} the old version may use`;
  }
  if (head === 'ALTER' && w[1] === 'TYPE' && w.includes('DROP'))
    return 'removes something from a type the old version uses';
  if (head === 'CREATE' && has(w, 'UNIQUE', 'INDEX')) {
    return 'adds a unique index that rows written by the old version may violate';
  }
  if (head === 'CREATE' && w.includes('INDEX') && w.includes('CONCURRENTLY')) {
    return 'CREATE INDEX CONCURRENTLY cannot run inside the migration transaction';
  }
  if (head === 'CREATE' && has(w, 'OR', 'REPLACE') && w.includes('VIEW')) {
    return 'replaces a view the old version may read (create a new view instead)';
  }
  if (
    head === 'VACUUM' ||
    head === 'CLUSTER' ||
    (head === 'REINDEX' && w.includes('CONCURRENTLY'))
  ) {
    return `${head} cannot run inside the migration transaction`;
  }
  return null;
}

/** Every statement of the script that would break the version still running. */
export function incompatibilities(sql: string): Incompatibility[] {
  const found: Incompatibility[] = [];
  for (const s of splitStatements(sql)) {
    const reason = statementProblem(s);
    if (reason)
      found.push({ line: s.line, statement: s.text.replace(/\s+/g, ' ').slice(0, 200), reason });
  }
  return found;
}
