// The store's password from a file, read on every new connection: a Secret
// mounted as a volume (Kubernetes updates the file in place when the Secret
// rotates) or any file the operator's user can read. pg's own pgpass support
// does not fit a pod: it ignores a file its group may read, and a Secret is
// readable by a non-root container only through the pod's fsGroup (0440).
// Others may never read it; the contents never appear in an error.
import { open } from 'node:fs/promises';

/** Largest password file read; a password is far shorter, anything else is the wrong file. */
const MAX_BYTES = 4096;

export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PasswordFileError(`${path} is not a regular file`);
      if ((st.mode & 0o007) !== 0) {
        throw new PasswordFileError(
          `${path} can be read or written by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
            'allow the owner, or owner and group, only (chmod 0600 or 0440)',
        );
      }
      if (st.size > MAX_BYTES)
        throw new PasswordFileError(`${path} is ${st.size} bytes: not a password file`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof PasswordFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new PasswordFileError(
      `cannot read the store's password file ${path}${code ? ` (${code})` : ''}`,
    );
  }
  // One trailing line break is the file's, not the password's (echo, kubectl create secret --from-file).
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new PasswordFileError(`the store's password file ${path} is empty`);
  return password;
}

export class PasswordFileError extends Error {
  override name = 'PasswordFileError';
}
