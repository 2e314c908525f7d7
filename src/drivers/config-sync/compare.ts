// Comparing the configuration across the two nodes (task list 2.5.5, 4.5.2,
// 4.5.3): sha256 of every regular file under the config folder, computed on
// each node with openssl, plus its mode and numeric owner. Only digests
// travel: the root key is hashed on the node and never read by the operator.
// The result, consistent or the list of differing files, goes to
// config_sync_record (checksums only).
import type { HAPair } from '../../inventory/hapair.js';
import { whileDoing } from '../errors.js';
import type { RecordSink } from '../records.js';
import type { NodeShell } from '../ssh/pool.js';
import {
  compareListings,
  type FileDifference,
  type FileSum,
  parseChecksumListing,
} from './parse.js';

/** $1 config dir: NUL-terminated "<sha256> <mode:uid:gid> ./<path>" per regular file. */
export const CHECKSUM_SCRIPT = `set -e
cd -- "$1"
find . -xdev -type f -exec sh -c 'for f; do h=$(openssl dgst -sha256 -r "$f") || exit 1; printf "%s %s %s\\0" "\${h%% *}" "$(stat -c %a:%u:%g -- "$f")" "$f"; done' sh {} +`;

export interface ConfigCompareContext {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  readonly records: RecordSink;
}

export interface ConfigComparison {
  readonly consistent: boolean;
  readonly differences: readonly FileDifference[];
  /** node -> path -> sha256 */
  readonly checksums: Record<string, Record<string, string>>;
}

export async function configChecksums(
  ctx: ConfigCompareContext,
  node: string,
): Promise<Map<string, FileSum>> {
  const dir = ctx.pair.spec.paths.configDir;
  return whileDoing(
    `hashing the files of ${dir}`,
    async () => {
      const r = await ctx.shell.exec(node, ['sh', '-c', CHECKSUM_SCRIPT, 'sh', dir], {
        timeoutMs: 120_000,
      });
      return parseChecksumListing(r.stdout);
    },
    { kind: 'terminal', node },
  );
}

export function describeDifferences(diffs: readonly FileDifference[]): string {
  return diffs.map((d) => `${d.path}: ${d.reason}`).join('; ');
}

export async function compareConfigAcrossNodes(
  ctx: ConfigCompareContext,
  opts: { upgradeId?: string | null } = {},
): Promise<ConfigComparison> {
  const [na, nb] = ctx.pair.spec.nodes.map((n) => n.name) as [string, string];
  const [fa, fb] = await Promise.all([configChecksums(ctx, na), configChecksums(ctx, nb)]);
  const differences = compareListings({ node: na, files: fa }, { node: nb, files: fb });
  const checksums = {
    [na]: Object.fromEntries([...fa].map(([p, s]) => [p, s.sha256])),
    [nb]: Object.fromEntries([...fb].map(([p, s]) => [p, s.sha256])),
  };
  const consistent = differences.length === 0;
  await ctx.records.configSync({
    upgradeId: opts.upgradeId ?? null,
    checksums,
    consistent,
    detail: consistent ? null : describeDifferences(differences),
  });
  return { consistent, differences, checksums };
}
