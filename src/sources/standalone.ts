// Standalone resources: no cluster. HAPairs and UpgradeRequests come from a
// folder of manifests (what a GitOps tool would sync) and from the REST API
// and CLI, and live in the operator's own store (table `resource`), with a
// generation that moves when the spec changes and a resource_version that
// moves on every write, as the Kubernetes API server does.
//
// A manifest that does not parse or validate is reported (file, field,
// problem) and changes nothing: the resource keeps its last good spec.
// Removing a manifest does not stop a running upgrade; the resource goes
// away once it has finished.
import { randomUUID } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { parseAllDocuments } from 'yaml';
import { isPhase, isTerminal } from '../core/phases.js';
import {
  API_VERSION,
  parseUpgradeRequest,
  ResourceError,
  type UpgradeRequest,
  type UpgradeRequestSpec,
  type UpgradeRequestStatus,
  upgradeRequestSpecSchema,
} from '../core/upgrade-request.js';
import { type HAPair, InventoryError, parseHAPair } from '../inventory/hapair.js';
import {
  type EventType,
  ResourceConflictError,
  ResourceNotFoundError,
  type ResourceSource,
  type SourceState,
} from '../reconciler/source.js';
import type { SqlClient } from '../store/sql-client.js';
import { appendLog } from '../store/upgrades.js';

export interface StandaloneOptions {
  readonly db: SqlClient;
  /** Folder of *.yaml manifests to follow; none means API-only. */
  readonly manifestsDir?: string | undefined;
  /** Every name is offered to the loop again this often (a resync). */
  readonly resyncMs?: number;
  /** Where problems with manifests are reported. */
  readonly onProblem?: (message: string) => void;
}

interface Row {
  kind: string;
  name: string;
  uid: string;
  generation: string | number;
  resource_version: string | number;
  spec: Record<string, unknown>;
  status: UpgradeRequestStatus | null;
  metadata: Record<string, unknown>;
  origin: string;
  created_at: Date;
}

type Kind = 'HAPair' | 'UpgradeRequest';

export class StandaloneSource implements ResourceSource {
  readonly description: string;
  readonly #changes = new Subject<string>();
  readonly changes$ = this.#changes.asObservable();
  #watcher: FSWatcher | null = null;
  #resync: NodeJS.Timeout | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #scanning: Promise<void> = Promise.resolve();
  #running = false;
  #watchProblem: string | undefined;

  constructor(private readonly opts: StandaloneOptions) {
    this.description = `standalone (${opts.db.description}${opts.manifestsDir ? `, manifests in ${opts.manifestsDir}` : ''})`;
  }

  async start(): Promise<void> {
    await this.scan();
    const dir = this.opts.manifestsDir;
    if (dir) {
      this.#watcher = watch(dir, () => {
        if (this.#debounce) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.scan(), 200);
      });
      this.#watcher.on('error', (e) => {
        this.#watchProblem = `cannot watch ${dir} (${e.message}); changes are seen at the next resync`;
        this.#problem(`watching ${dir}: ${e.message}`);
      });
    }
    this.#resync = setInterval(() => void this.resync(), this.opts.resyncMs ?? 30_000);
    this.#running = true;
  }

  state(): SourceState {
    return {
      running: this.#running,
      ...(this.#watchProblem ? { problem: this.#watchProblem } : {}),
    };
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#watcher?.close();
    if (this.#resync) clearInterval(this.#resync);
    if (this.#debounce) clearTimeout(this.#debounce);
    await this.#scanning;
    this.#changes.complete();
  }

  /** Offers every UpgradeRequest to the loop again (and re-reads the folder). */
  async resync(): Promise<void> {
    await this.scan();
    for (const r of await this.listUpgradeRequests()) this.#changes.next(r.metadata.name);
  }

  /** Reads the manifests folder and brings the store in line with it. */
  scan(): Promise<void> {
    this.#scanning = this.#scanning
      .then(() => this.#scanOnce())
      .catch((e: unknown) => this.#problem(`reading manifests: ${(e as Error).message}`));
    return this.#scanning;
  }

  async #scanOnce(): Promise<void> {
    const dir = this.opts.manifestsDir;
    if (!dir) return;
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    const seen = new Set<string>();
    // Files with a problem keep every resource they had: nothing is lost to a typo.
    const troubled = new Set<string>();
    for (const file of files) {
      const path = join(dir, file);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        this.#problem(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
        troubled.add(path);
        continue;
      }
      const docs = parseAllDocuments(text);
      for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
        const where = `${path}${i > 0 ? ` (document ${i + 1})` : ''}`;
        if (doc.errors.length > 0) {
          this.#problem(`${where}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
          troubled.add(path);
          continue;
        }
        const raw = doc.toJS() as { kind?: unknown } | null;
        if (raw === null) continue;
        try {
          if (raw.kind === 'HAPair') {
            const pair = parseHAPair(JSON.stringify(raw), where);
            seen.add(`HAPair/${pair.metadata.name}`);
            await this.#upsert('HAPair', pair.metadata.name, pair.spec, pair.metadata, path);
          } else if (raw.kind === 'UpgradeRequest') {
            const req = parseUpgradeRequest(raw, where);
            seen.add(`UpgradeRequest/${req.metadata.name}`);
            if (
              await this.#upsert('UpgradeRequest', req.metadata.name, req.spec, req.metadata, path)
            ) {
              this.#changes.next(req.metadata.name);
            }
          } else {
            this.#problem(
              `${where}: kind ${JSON.stringify(raw.kind)} is not HAPair or UpgradeRequest; skipped`,
            );
          }
        } catch (e) {
          if (!(e instanceof InventoryError || e instanceof ResourceError)) throw e;
          this.#problem(e.message);
          troubled.add(path);
        }
      }
    }
    await this.#forgetRemoved(dir, seen, troubled);
  }

  /** Resources whose manifest is gone: removed, unless an upgrade is still running. */
  async #forgetRemoved(
    dir: string,
    seen: ReadonlySet<string>,
    troubled: ReadonlySet<string>,
  ): Promise<void> {
    const rows = await this.opts.db.query<Row>(`SELECT * FROM resource WHERE origin LIKE $1`, [
      `${dir}/%`,
    ]);
    for (const row of rows) {
      if (seen.has(`${row.kind}/${row.name}`) || troubled.has(row.origin)) continue;
      const phase = row.status?.phase;
      if (
        row.kind === 'UpgradeRequest' &&
        phase &&
        isPhase(phase) &&
        !isTerminal(phase) &&
        phase !== 'IDLE'
      ) {
        this.#problem(
          `${row.origin}: removed while upgrade ${row.name} is ${phase}; it finishes first`,
        );
        continue;
      }
      await this.opts.db.query('DELETE FROM resource WHERE kind = $1 AND name = $2', [
        row.kind,
        row.name,
      ]);
      if (row.kind === 'UpgradeRequest') this.#changes.next(row.name);
    }
  }

  /** Inserts or updates a spec; returns whether the spec changed. */
  async #upsert(
    kind: Kind,
    name: string,
    spec: object,
    metadata: { labels?: unknown; annotations?: unknown },
    origin: string,
  ): Promise<boolean> {
    const meta = { labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} };
    const rows = await this.opts.db.query<{ name: string }>(
      `INSERT INTO resource (kind, name, uid, spec, metadata, origin)
       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)
       ON CONFLICT (kind, name) DO UPDATE
         SET spec = EXCLUDED.spec,
             metadata = EXCLUDED.metadata,
             origin = EXCLUDED.origin,
             generation = resource.generation + CASE WHEN resource.spec = EXCLUDED.spec THEN 0 ELSE 1 END,
             resource_version = resource.resource_version + 1,
             updated_at = now()
         WHERE resource.spec IS DISTINCT FROM EXCLUDED.spec
            OR resource.metadata IS DISTINCT FROM EXCLUDED.metadata
            OR resource.origin IS DISTINCT FROM EXCLUDED.origin
       RETURNING name`,
      [kind, name, randomUUID(), JSON.stringify(spec), JSON.stringify(meta), origin],
    );
    return rows.length > 0;
  }

  async #row(kind: Kind, name: string): Promise<Row | null> {
    const [row] = await this.opts.db.query<Row>(
      'SELECT * FROM resource WHERE kind = $1 AND name = $2',
      [kind, name],
    );
    return row ?? null;
  }

  #toRequest(row: Row): UpgradeRequest {
    const metadata = row.metadata as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    return {
      apiVersion: API_VERSION,
      kind: 'UpgradeRequest',
      metadata: {
        name: row.name,
        uid: row.uid,
        generation: Number(row.generation),
        resourceVersion: String(row.resource_version),
        creationTimestamp: new Date(row.created_at).toISOString(),
        ...(metadata.labels ? { labels: metadata.labels } : {}),
        ...(metadata.annotations ? { annotations: metadata.annotations } : {}),
      },
      spec: row.spec as UpgradeRequestSpec,
      ...(row.status ? { status: row.status } : {}),
    };
  }

  async getUpgradeRequest(name: string): Promise<UpgradeRequest | null> {
    const row = await this.#row('UpgradeRequest', name);
    return row ? this.#toRequest(row) : null;
  }

  async listUpgradeRequests(): Promise<UpgradeRequest[]> {
    const rows = await this.opts.db.query<Row>(
      `SELECT * FROM resource WHERE kind = 'UpgradeRequest' ORDER BY created_at, name`,
    );
    return rows.map((r) => this.#toRequest(r));
  }

  async getHAPair(name: string): Promise<HAPair | null> {
    const row = await this.#row('HAPair', name);
    if (!row) return null;
    const metadata = row.metadata as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    return parseHAPair(
      JSON.stringify({
        apiVersion: API_VERSION,
        kind: 'HAPair',
        metadata: { name: row.name, ...metadata },
        spec: row.spec,
      }),
      `HAPair ${name}`,
    );
  }

  /** Adds (or replaces) an HAPair from the API or a test; the folder is the usual way. */
  async putHAPair(pair: HAPair): Promise<void> {
    await this.#upsert('HAPair', pair.metadata.name, pair.spec, pair.metadata, 'api');
  }

  async createUpgradeRequest(
    req: Pick<UpgradeRequest, 'metadata' | 'spec'>,
  ): Promise<UpgradeRequest> {
    const valid = parseUpgradeRequest(
      { apiVersion: API_VERSION, kind: 'UpgradeRequest', ...req },
      'request',
    );
    const rows = await this.opts.db.query<Row>(
      `INSERT INTO resource (kind, name, uid, spec, metadata, origin)
       VALUES ('UpgradeRequest', $1, $2, $3::jsonb, $4::jsonb, 'api')
       ON CONFLICT (kind, name) DO NOTHING
       RETURNING *`,
      [
        valid.metadata.name,
        randomUUID(),
        JSON.stringify(valid.spec),
        JSON.stringify({
          labels: valid.metadata.labels ?? {},
          annotations: valid.metadata.annotations ?? {},
        }),
      ],
    );
    if (rows.length === 0)
      throw new ResourceConflictError(`UpgradeRequest ${valid.metadata.name} already exists`);
    this.#changes.next(valid.metadata.name);
    return this.#toRequest(rows[0]!);
  }

  async patchSpec(name: string, patch: Partial<UpgradeRequestSpec>): Promise<UpgradeRequest> {
    const current = await this.getUpgradeRequest(name);
    if (!current) throw new ResourceNotFoundError(`UpgradeRequest ${name} does not exist`);
    const spec = upgradeRequestSpecSchema.parse({ ...current.spec, ...patch });
    const rows = await this.opts.db.query<Row>(
      `UPDATE resource SET spec = $3::jsonb, generation = generation + 1,
              resource_version = resource_version + 1, updated_at = now()
        WHERE kind = 'UpgradeRequest' AND name = $1 AND resource_version = $2
        RETURNING *`,
      [name, current.metadata.resourceVersion, JSON.stringify(spec)],
    );
    if (rows.length === 0)
      throw new ResourceConflictError(`UpgradeRequest ${name} changed meanwhile; try again`);
    this.#changes.next(name);
    return this.#toRequest(rows[0]!);
  }

  async updateStatus(name: string, status: UpgradeRequestStatus): Promise<void> {
    // One reconcile per key at a time (the loop) makes the reconciler the
    // only writer of a status, so no compare-and-set is needed here.
    const rows = await this.opts.db.query(
      `UPDATE resource SET status = $2::jsonb, resource_version = resource_version + 1, updated_at = now()
        WHERE kind = 'UpgradeRequest' AND name = $1 RETURNING name`,
      [name, JSON.stringify(status)],
    );
    if (rows.length === 0) throw new ResourceNotFoundError(`UpgradeRequest ${name} does not exist`);
  }

  async recordEvent(name: string, type: EventType, reason: string, message: string): Promise<void> {
    try {
      await appendLog(this.opts.db, name, {
        level: type === 'Warning' ? 'WARNING' : 'INFO',
        source: 'reconciler',
        message: `${reason}: ${message}`,
      });
    } catch {
      // No task row yet (the request was refused before it started): the
      // reconciler's own log still has it.
    }
  }

  #problem(message: string): void {
    this.opts.onProblem?.(message);
  }
}
