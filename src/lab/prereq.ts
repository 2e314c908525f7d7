// What the lab needs from the machine, checked before anything is created,
// each missing piece reported as one line saying what to do.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

type Exists = (path: string) => boolean;

interface Need {
  what: string;
  present: (has: Exists, onPath: (cmd: string) => boolean) => boolean;
  fix: string;
}

const pathSearch = (has: Exists) => (cmd: string) =>
  (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(delimiter)
    .concat(['/usr/sbin', '/sbin'])
    .some((dir) => has(join(dir, cmd)));

export const JDBC_JAR = '/usr/share/java/postgresql.jar';

const NEEDS: Need[] = [
  {
    what: 'keepalived',
    present: (_h, onPath) => onPath('keepalived'),
    fix: 'apt-get install -y keepalived',
  },
  {
    what: 'sshd',
    present: (_h, onPath) => onPath('sshd'),
    fix: 'apt-get install -y openssh-server',
  },
  { what: 'rsync', present: (_h, onPath) => onPath('rsync'), fix: 'apt-get install -y rsync' },
  {
    what: 'ssh and ssh-keygen',
    present: (_h, onPath) => onPath('ssh') && onPath('ssh-keygen'),
    fix: 'apt-get install -y openssh-client',
  },
  {
    what: 'ip, nsenter and unshare',
    present: (_h, onPath) => onPath('ip') && onPath('nsenter') && onPath('unshare'),
    fix: 'apt-get install -y iproute2 util-linux',
  },
  {
    what: 'PostgreSQL 15 server binaries (pg_config)',
    present: (_h, onPath) => onPath('pg_config'),
    fix: 'apt-get install -y postgresql-15',
  },
  {
    what: 'the PostgreSQL JDBC driver',
    present: (has) => has(JDBC_JAR),
    fix: 'apt-get install -y libpostgresql-jdbc-java',
  },
  {
    what: 'a JDK (javac, jar, java)',
    present: (_h, onPath) => onPath('javac') && onPath('jar') && onPath('java'),
    fix: 'apt-get install -y openjdk-17-jdk-headless',
  },
  {
    what: 'python3',
    present: (has) => has('/usr/bin/python3'),
    fix: 'apt-get install -y python3',
  },
];

/** Throws one line for the first thing missing. `has` and `uid` are
 * injectable so the messages can be tested on a machine that has it all. */
export function checkPrerequisites(
  has: Exists = existsSync,
  uid: number | undefined = process.getuid?.(),
): void {
  if (uid !== 0) {
    throw new Error('lab needs root (network and mount namespaces): run it with sudo or as root');
  }
  const onPath = pathSearch(has);
  for (const n of NEEDS) {
    if (!n.present(has, onPath)) throw new Error(`lab needs ${n.what}: ${n.fix}`);
  }
}
