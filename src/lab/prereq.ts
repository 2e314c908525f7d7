// What the lab needs from the machine, checked before anything is created,
// each missing piece reported as one line saying what to do.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

interface Need {
  what: string;
  /** any of these paths or commands */
  present: () => boolean;
  fix: string;
}

const onPath = (cmd: string) =>
  (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(delimiter)
    .concat(['/usr/sbin', '/sbin'])
    .some((dir) => existsSync(join(dir, cmd)));

export const JDBC_JAR = '/usr/share/java/postgresql.jar';

const NEEDS: Need[] = [
  { what: 'keepalived', present: () => onPath('keepalived'), fix: 'apt-get install -y keepalived' },
  { what: 'sshd', present: () => onPath('sshd'), fix: 'apt-get install -y openssh-server' },
  { what: 'rsync', present: () => onPath('rsync'), fix: 'apt-get install -y rsync' },
  {
    what: 'ssh and ssh-keygen',
    present: () => onPath('ssh') && onPath('ssh-keygen'),
    fix: 'apt-get install -y openssh-client',
  },
  {
    what: 'ip, nsenter and unshare',
    present: () => onPath('ip') && onPath('nsenter') && onPath('unshare'),
    fix: 'apt-get install -y iproute2 util-linux',
  },
  {
    what: 'PostgreSQL 15 server binaries (pg_config)',
    present: () => onPath('pg_config'),
    fix: 'apt-get install -y postgresql-15',
  },
  {
    what: 'the PostgreSQL JDBC driver',
    present: () => existsSync(JDBC_JAR),
    fix: 'apt-get install -y libpostgresql-jdbc-java',
  },
  {
    what: 'a JDK (javac, jar, java)',
    present: () => onPath('javac') && onPath('jar') && onPath('java'),
    fix: 'apt-get install -y openjdk-17-jdk-headless',
  },
  {
    what: 'python3',
    present: () => existsSync('/usr/bin/python3'),
    fix: 'apt-get install -y python3',
  },
];

/** Throws one line for the first thing missing. */
export function checkPrerequisites(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('lab needs root (network and mount namespaces): run it with sudo or as root');
  }
  for (const n of NEEDS) {
    if (!n.present()) throw new Error(`lab needs ${n.what}: ${n.fix}`);
  }
}
