// One line for a person: the message, and for errors that carry a cause
// chain ("while migrating: connect ECONNREFUSED ..."), each cause appended.
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    if (cur instanceof AggregateError && cur.errors.length > 0 && !cur.message) {
      cur = cur.errors[0];
      continue;
    }
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (msg && !parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ').replace(/\s*\n\s*/g, ' ');
}
