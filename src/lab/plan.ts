// The lab's addressing plan, derived from its name alone (pure).
//
// Every lab lives in its own /24 inside 198.18.0.0/15 (RFC 2544 benchmarking
// space, never routed off the machine). The /24 is picked by a small stable
// hash of the name so a lab keeps its addresses across runs; if another lab
// already holds that /24 the next free one is taken (the choice is recorded in
// the lab's state file, so `down` and `status` never re-derive it).
//
// Inside the /24 the host offsets are fixed so documentation can speak of
// ".11 is node A" whatever the lab:
//   .1   host uplink (the machine's root namespace, so the operator and tests
//        can reach the nodes without entering a namespace)
//   .2   the client namespace (probes come from outside both nodes)
//   .11  node A, .12 node B, .100 the VIP

export const SUBNET_COUNT = 512; // 198.18.0.0/15 holds 512 /24s

export type NodeId = 'a' | 'b';
export const NODE_IDS: readonly NodeId[] = ['a', 'b'];

export interface LabPlan {
  name: string;
  /** index of the /24 inside 198.18.0.0/15, 0..511 */
  subnetIndex: number;
  /** e.g. "198.18.37" */
  prefix: string;
  cidr: string;
  uplinkAddress: string;
  clientAddress: string;
  nodeAddress: Record<NodeId, string>;
  vip: string;
  /** keepalived virtual_router_id (1..255); each lab has its own bridge, so
   * a clash would be harmless, but distinct ids keep captures readable */
  vrid: number;
  netns: { lan: string; a: string; b: string; client: string };
  /** veth in the root namespace that joins the host to the lab bridge */
  uplinkIf: string;
}

const NAME_RE = /^[a-z][a-z0-9-]{0,10}$/;

/** Lab names become netns names, hostnames and (prefixed) a host interface
 * name, which Linux limits to 15 characters. */
export function validateLabName(name: string): string {
  if (!NAME_RE.test(name) || name.endsWith('-')) {
    throw new Error(
      `invalid lab name "${name}": use 1-11 characters, lowercase letters, digits and '-', starting with a letter`,
    );
  }
  return name;
}

/** FNV-1a 32-bit: small, stable across Node versions and platforms. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The preferred /24 for a name, then the next free one if taken. */
export function chooseSubnetIndex(name: string, taken: ReadonlySet<number>): number {
  const start = fnv1a(name) % SUBNET_COUNT;
  for (let i = 0; i < SUBNET_COUNT; i++) {
    const idx = (start + i) % SUBNET_COUNT;
    if (!taken.has(idx)) return idx;
  }
  throw new Error('no free /24 left in 198.18.0.0/15 for another lab');
}

export function planLab(name: string, subnetIndex: number): LabPlan {
  validateLabName(name);
  if (!Number.isInteger(subnetIndex) || subnetIndex < 0 || subnetIndex >= SUBNET_COUNT) {
    throw new Error(`subnet index ${subnetIndex} outside 0..${SUBNET_COUNT - 1}`);
  }
  const prefix = `198.${18 + Math.floor(subnetIndex / 256)}.${subnetIndex % 256}`;
  return {
    name,
    subnetIndex,
    prefix,
    cidr: `${prefix}.0/24`,
    uplinkAddress: `${prefix}.1`,
    clientAddress: `${prefix}.2`,
    nodeAddress: { a: `${prefix}.11`, b: `${prefix}.12` },
    vip: `${prefix}.100`,
    vrid: (subnetIndex % 255) + 1,
    netns: { lan: `${name}-lan`, a: `${name}-a`, b: `${name}-b`, client: `${name}-client` },
    uplinkIf: `psl-${name}`,
  };
}
