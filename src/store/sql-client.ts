// The one database seam of pairshift. Everything above it (migrations,
// repositories) is written against this interface, so the same code runs on
// a real PostgreSQL server (postgres.ts) and on the embedded PGlite store
// (pglite.ts).

/** Runs statements. Parameters are $1, $2, ... as in PostgreSQL. */
export interface SqlExecutor {
  /** One statement with parameters; returns the rows. */
  query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]>;
  /** A script of several statements without parameters (migration files). */
  exec(script: string): Promise<void>;
}

export interface SqlClient extends SqlExecutor {
  /** "PostgreSQL at host:port/db" or "embedded store at DIR"; never secrets. */
  readonly description: string;
  /**
   * Runs fn in one transaction on one connection: committed when fn
   * resolves, rolled back when it throws (and the error is rethrown).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
