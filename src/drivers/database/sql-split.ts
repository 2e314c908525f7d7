// A small SQL lexer: enough of PostgreSQL's lexical rules to split a script
// into statements and see its words, without being fooled by comments,
// quoted identifiers, string literals or dollar-quoted bodies.

export interface Statement {
  /** The statement as written (trimmed), for messages. */
  readonly text: string;
  /** Its words in upper case, with literals and comments removed and identifiers unquoted (lower-cased). */
  readonly words: readonly string[];
  /** 1-based line where the statement starts. */
  readonly line: number;
}

export class SqlSyntaxError extends Error {
  override readonly name = 'SqlSyntaxError';
}

export function splitStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  let words: string[] = [];
  let start = 0;
  let startLine = 1;
  let line = 1;
  let i = 0;
  let sawContent = false;
  const flush = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (sawContent && words.length > 0) out.push({ text, words, line: startLine });
    words = [];
    sawContent = false;
  };
  const lineAt = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (sql[k] === '\n') line++;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (!sawContent && /\s/.test(c)) {
      if (c === '\n') line++;
      i++;
      start = i;
      startLine = line;
      continue;
    }
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      continue;
    }
    if (c === '/' && next === '*') {
      // PostgreSQL block comments nest.
      let depth = 1;
      let k = i + 2;
      while (k < sql.length && depth > 0) {
        if (sql[k] === '/' && sql[k + 1] === '*') {
          depth++;
          k += 2;
        } else if (sql[k] === '*' && sql[k + 1] === '/') {
          depth--;
          k += 2;
        } else k++;
      }
      if (depth > 0) throw new SqlSyntaxError(`unterminated /* comment starting on line ${line}`);
      lineAt(i, k);
      i = k;
      continue;
    }
    if (/\s/.test(c)) {
      if (c === '\n') line++;
      i++;
      continue;
    }
    sawContent = true;
    if (c === "'" || ((c === 'E' || c === 'e') && next === "'")) {
      let k = c === "'" ? i + 1 : i + 2;
      const escapes = c !== "'";
      for (;;) {
        if (k >= sql.length)
          throw new SqlSyntaxError(`unterminated string starting on line ${line}`);
        if (escapes && sql[k] === '\\') {
          k += 2;
          continue;
        }
        if (sql[k] === "'") {
          if (sql[k + 1] === "'") {
            k += 2;
            continue;
          }
          break;
        }
        k++;
      }
      lineAt(i, k);
      words.push("'LITERAL'");
      i = k + 1;
      continue;
    }
    if (c === '"') {
      let k = i + 1;
      let ident = '';
      for (;;) {
        if (k >= sql.length)
          throw new SqlSyntaxError(`unterminated quoted identifier on line ${line}`);
        if (sql[k] === '"') {
          if (sql[k + 1] === '"') {
            ident += '"';
            k += 2;
            continue;
          }
          break;
        }
        ident += sql[k];
        k++;
      }
      lineAt(i, k);
      words.push(`"${ident}"`);
      i = k + 1;
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        if (end === -1) throw new SqlSyntaxError(`unterminated ${tag[0]} body on line ${line}`);
        lineAt(i, end);
        words.push('$BODY$');
        i = end + tag[0].length;
        continue;
      }
    }
    if (c === ';') {
      flush(i);
      i++;
      start = i;
      startLine = line;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i));
    if (word) {
      words.push(word[0].toUpperCase());
      i += word[0].length;
      continue;
    }
    words.push(c);
    i++;
  }
  flush(sql.length);
  return out;
}
