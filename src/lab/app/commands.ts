// The exact command lines that start the lab app's services, shared by the
// lab (which runs them inside node namespaces) and the tests (which run them
// on loopback), so what is tested is what the lab runs.
import { JDBC_JAR } from './build.js';

export const JAVA_PORT = 8080;
export const WORKER_PORT = 8081;
export const CONFIG_DIR = '/etc/app';

export interface ServiceCommandOptions {
  /** Address to listen on; the lab's nodes use 0.0.0.0 inside their namespace. */
  host?: string;
  port?: number;
  configDir?: string;
  /** Java service only: names its heartbeat row (default node.name, else the host name). */
  nodeName?: string;
}

/** argv for the Java service. Small heap and serial GC: two JVMs share a small machine. */
export function javaCommand(jarPath: string, o: ServiceCommandOptions = {}): string[] {
  return [
    'java',
    '-Xms32m',
    '-Xmx128m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-jar',
    jarPath,
    '--host',
    o.host ?? '0.0.0.0',
    '--port',
    String(o.port ?? JAVA_PORT),
    '--config-dir',
    o.configDir ?? CONFIG_DIR,
    ...(o.nodeName ? ['--node-name', o.nodeName] : []),
  ];
}

/** argv for the Python service. */
export function workerCommand(pythonPath: string, o: ServiceCommandOptions = {}): string[] {
  return [
    'python3',
    pythonPath,
    '--host',
    o.host ?? '0.0.0.0',
    '--port',
    String(o.port ?? WORKER_PORT),
    '--config-dir',
    o.configDir ?? CONFIG_DIR,
  ];
}

export interface DbSettings {
  host: string;
  port: number;
  name: string;
  user: string;
  password?: string;
  /** Names this instance's heartbeat row (default: the host name). */
  nodeName?: string;
}

/** Renders /etc/app/app.properties (pure; the lab writes it). */
export function renderAppProperties(db: DbSettings): string {
  const lines = [
    '# Database the Java service checks on /health (read and write).',
    `db.host=${db.host}`,
    `db.port=${db.port}`,
    `db.name=${db.name}`,
    `db.user=${db.user}`,
  ];
  if (db.password) lines.push(`db.password=${db.password}`);
  if (db.nodeName) lines.push(`node.name=${db.nodeName}`);
  return `${lines.join('\n')}\n`;
}

export { JDBC_JAR };
