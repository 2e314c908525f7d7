// What kind of failure a step met decides what happens next. The kinds are
// the vocabulary of the one error policy (src/core/error-policy.ts):
// - transient: worth retrying with backoff (network blip, sshd restarting);
// - waiting:   not an error yet: the world has not caught up (replay lag);
// - conflict:  someone else changed what we were about to change; re-observe;
// - terminal:  retrying will not help (bad host key, refused migration).
export type ErrorKind = 'transient' | 'waiting' | 'conflict' | 'terminal';
