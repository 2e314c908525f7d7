// Commands run on nodes are built from argument arrays, never by pasting
// strings: every argument is single-quoted for a POSIX shell, so quotes,
// $(...), backticks, ;, |, newlines and globs arrive as literal bytes.
// A leading '-' is data too as far as the shell is concerned; callers put
// `--` before operands where the program would read it as an option.

/** One argument, safe for sh, bash and dash. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('a command argument cannot contain a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A whole command line from its argv. */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('empty command');
  return argv.map(shellQuote).join(' ');
}
