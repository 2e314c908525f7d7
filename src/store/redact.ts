// Database URLs may carry a password; whatever we print or log goes through
// here first.

/** The URL with any password replaced by "***"; best effort on junk input. */
export function redactDatabaseUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    // Not a URL: still hide "user:password@" and "password=..." shapes.
    return raw
      .replace(/(\/\/[^/:@\s]*:)[^@\s]*@/g, '$1***@')
      .replace(/(password\s*=\s*)\S+/gi, '$1***');
  }
}
