// A valid HAPair manifest for tests and benches that need a pair in the store
// but never reach its nodes (the addresses are in a documentation range).
const FP = 'SHA256:Q1b9c2m0yNnYQm9m8R5m2zj9y7t8H1o6hXq3x4K5v6w';
/** An HAPair named name: nodes a and b, every command a placeholder. */
export const hapairYaml = (name: string) => `apiVersion: pairshift.io/v1alpha1
kind: HAPair
metadata: {name: ${name}}
spec:
  vip: {address: 198.18.0.100, prefixLength: 24, interface: eth0}
  ssh: {user: root, port: 22, privateKeyPath: /keys/id}
  nodes:
    - {name: a, address: 198.18.0.11, ssh: {hostKey: {fingerprint: "${FP}"}}}
    - {name: b, address: 198.18.0.12, ssh: {hostKey: {fingerprint: "${FP}"}}}
  keepalived: {configPath: /etc/keepalived/keepalived.conf, instance: VI_1, start: s, stop: s, status: s, reload: s}
  services: [{name: java, port: 8080, start: s, stop: s, status: s}]
  database: {port: 5432, name: app, user: app, superuser: postgres, replicationUser: rep, osUser: postgres, dataDir: /d, binDir: /b, start: s, stop: s, status: s}
  rsync: {source: /etc/app/, direction: vip-holder-to-peer, periodSeconds: 2, pause: p, resume: r, status: s}
  paths: {appDir: /opt/app, appJar: /opt/app/app.jar, configDir: /etc/app, rootKey: /etc/app/root.key, backupDir: /var/backups/app}
`;
