// One SQL statement against a lab node's app database, as the postgres OS
// user over the node's socket: the argv to run inside the node's namespace.
export function appPsqlArgv(sql: string): string[] {
  return [
    'runuser',
    '-u',
    'postgres',
    '--',
    'psql',
    '-XAtq',
    '-h',
    '/run/postgresql',
    '-d',
    'app',
    '-c',
    sql,
  ];
}
