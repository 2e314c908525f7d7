// What `kubectl pairshift` needs of the cluster, through the kubeconfig
// (client-node, the same loader the operator uses): read, list and
// merge-patch UpgradeRequests, read HAPairs, list Events. Every failure is
// turned into the CLI's exit codes (exit-codes.ts) here, once: 404 is
// NOT_FOUND, no answer at all API_UNREACHABLE, any other refusal ERROR.
// `answer()` keeps the HTTP status instead, for the watch loop, which retries
// 502/503/504 like no answer (upgrade-watch.ts).
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { API_GROUP } from '../core/upgrade-request.js';
import { HAPAIR_NAMES, UPGRADE_REQUEST_NAMES } from '../sources/crd.js';
import {
  GROUP_VERSION,
  httpStatusOf,
  loadKubeConfig,
  namespaceFrom,
} from '../sources/kubernetes.js';
import type { Answer } from './api-client.js';
import { describeError } from './errors.js';
import { CliError, EXIT, exitCodeForStatus, usageError } from './exit-codes.js';

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are open JSON
export type KObject = { [key: string]: any };

export interface KubeTarget {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class PairshiftKube {
  readonly namespace: string;
  /** The kubeconfig user's name (not a credential): who asked, in spec.cancel and the like. */
  readonly user: string;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;

  constructor(kc: KubeConfig, namespace: string) {
    this.namespace = namespace;
    this.user = kc.getCurrentUser()?.name ?? 'unknown';
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#core = kc.makeApiClient(CoreV1Api);
  }

  static from(t: KubeTarget): PairshiftKube {
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig({ kubeconfigPath: t.kubeconfig, context: t.context });
    } catch (err) {
      throw usageError(`cannot use the kubeconfig: ${describeError(err)}`, { cause: err });
    }
    return new PairshiftKube(kc, namespaceFrom(kc, t.namespace));
  }

  #coords(plural: string) {
    return { group: API_GROUP, version: GROUP_VERSION, namespace: this.namespace, plural };
  }

  async upgradeRequest(name: string): Promise<KObject> {
    return this.#call(`upgraderequest ${name}`, () =>
      this.#custom.getNamespacedCustomObject({
        ...this.#coords(UPGRADE_REQUEST_NAMES.plural),
        name,
      }),
    );
  }

  /**
   * One read for the watch loop: the status of an answer, not an exception,
   * for HTTP errors; an API server silent for silenceMs counts as
   * unreachable (a watch must not hang on one request past --timeout).
   */
  async answer(name: string, silenceMs: number): Promise<Answer> {
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CliError(
              `the Kubernetes API did not answer within ${silenceMs} ms`,
              EXIT.API_UNREACHABLE,
            ),
          ),
        silenceMs,
      );
    });
    try {
      return { status: 200, body: await Promise.race([this.upgradeRequest(name), silent]) };
    } catch (err) {
      const status = httpStatusOf((err as Error).cause);
      if (status === undefined) throw err;
      return { status, body: { title: (err as Error).message } };
    } finally {
      clearTimeout(timer);
    }
  }

  async upgradeRequests(): Promise<KObject[]> {
    const list = await this.#call('upgraderequests', () =>
      this.#custom.listNamespacedCustomObject(this.#coords(UPGRADE_REQUEST_NAMES.plural)),
    );
    return (list.items ?? []) as KObject[];
  }

  /** The pair, or null when there is none (a request may name a pair that is gone). */
  async haPair(name: string): Promise<KObject | null> {
    try {
      return await this.#call(`hapair ${name}`, () =>
        this.#custom.getNamespacedCustomObject({ ...this.#coords(HAPAIR_NAMES.plural), name }),
      );
    } catch (err) {
      if (err instanceof CliError && err.exitCode === EXIT.NOT_FOUND) return null;
      throw err;
    }
  }

  /** A JSON merge patch of the spec (the API server bumps generation; the operator acts on it). */
  async patchSpec(name: string, spec: KObject): Promise<KObject> {
    return this.#call(`upgraderequest ${name}`, () =>
      this.#custom.patchNamespacedCustomObject(
        { ...this.#coords(UPGRADE_REQUEST_NAMES.plural), name, body: { spec } },
        mergePatch,
      ),
    );
  }

  /** The Events recorded about one UpgradeRequest, oldest first. */
  async eventsOf(name: string): Promise<KObject[]> {
    const list = await this.#call('events', () =>
      this.#core.listNamespacedEvent({
        namespace: this.namespace,
        fieldSelector: `involvedObject.kind=UpgradeRequest,involvedObject.name=${name}`,
      }),
    );
    // Filtered here as well: an API server may ignore a field selector.
    return ((list.items ?? []) as KObject[])
      .filter((e) => e.involvedObject?.kind === 'UpgradeRequest' && e.involvedObject?.name === name)
      .sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === undefined)
        throw new CliError(
          `the Kubernetes API could not be reached: ${describeError(err)}`,
          EXIT.API_UNREACHABLE,
          { cause: err },
        );
      const reason = kubeMessage(err);
      const message =
        status === 404
          ? `${what} not found in namespace ${this.namespace}`
          : `the Kubernetes API refused ${what} (${status})${reason ? `: ${reason}` : ''}`;
      // 400 from the API server is a bad object, not a bad command line
      throw new CliError(message, status === 400 ? EXIT.ERROR : exitCodeForStatus(status), {
        cause: err,
      });
    }
  }
}

/** The Status message the API server sends with an error, when there is one. */
function kubeMessage(err: unknown): string | undefined {
  const body = (err as { body?: unknown } | null)?.body;
  try {
    const parsed = typeof body === 'string' ? JSON.parse(body) : body;
    const m = (parsed as { message?: unknown } | null)?.message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** When an Event happened, as ISO text (core/v1 Events carry one of these). */
export function eventTime(e: KObject): string {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t).toISOString() : '';
}
