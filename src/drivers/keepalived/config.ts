// Reading and editing keepalived.conf (task list 2.4.1, 2.4.2) without
// rewriting it: the file is tokenised with positions, the instance found,
// and only the characters of the changed value are replaced, so comments,
// layout and everything pairshift does not manage stay as the operator wrote
// them. Pure functions; the driver does the I/O.

interface Token {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

function tokenize(conf: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < conf.length) {
    const c = conf[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || c === '!') {
      while (i < conf.length && conf[i] !== '\n') i++;
    } else if (c === '{' || c === '}') {
      tokens.push({ text: c, start: i, end: i + 1 });
      i++;
    } else if (c === '"') {
      const end = conf.indexOf('"', i + 1);
      const stop = end === -1 ? conf.length : end + 1;
      tokens.push({ text: conf.slice(i + 1, stop - 1), start: i, end: stop });
      i = stop;
    } else {
      const start = i;
      while (i < conf.length && !/[\s{}#!]/.test(conf[i]!)) i++;
      tokens.push({ text: conf.slice(start, i), start, end: i });
    }
  }
  return tokens;
}

interface Block {
  /** Tokens of the block's own lines (nested blocks excluded), grouped by line. */
  readonly lines: Token[][];
  readonly children: { head: Token[]; block: Block }[];
  readonly openAt: number;
  readonly closeAt: number;
}

function parseBlock(conf: string, tokens: Token[], from: number, openAt: number): [Block, number] {
  const lines: Token[][] = [];
  const children: { head: Token[]; block: Block }[] = [];
  let current: Token[] = [];
  let lineNo = -1;
  const lineOf = (t: Token) => conf.slice(0, t.start).split('\n').length;
  let i = from;
  const pushLine = () => {
    if (current.length > 0) lines.push(current);
    current = [];
  };
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t.text === '}' && t.end - t.start === 1) {
      pushLine();
      return [{ lines, children, openAt, closeAt: t.start }, i + 1];
    }
    if (t.text === '{' && t.end - t.start === 1) {
      const head = current;
      current = [];
      const [block, next] = parseBlock(conf, tokens, i + 1, t.start);
      children.push({ head, block });
      i = next;
      lineNo = -1;
      continue;
    }
    const ln = lineOf(t);
    if (ln !== lineNo) {
      pushLine();
      lineNo = ln;
    }
    current.push(t);
    i++;
  }
  pushLine();
  return [{ lines, children, openAt, closeAt: conf.length }, i];
}

export class KeepalivedConfigError extends Error {
  override readonly name = 'KeepalivedConfigError';
}

function findInstance(conf: string, instance: string): Block {
  const [root] = parseBlock(conf, tokenize(conf), 0, -1);
  const found = root.children.find(
    (c) => c.head[0]?.text === 'vrrp_instance' && c.head[1]?.text === instance,
  );
  if (!found)
    throw new KeepalivedConfigError(`no vrrp_instance ${instance} in the keepalived configuration`);
  return found.block;
}

export interface VrrpInstance {
  readonly name: string;
  readonly state: string | null;
  readonly interface: string | null;
  readonly virtualRouterId: number | null;
  readonly priority: number;
  readonly advertInt: number | null;
  readonly nopreempt: boolean;
  readonly virtualIps: readonly string[];
}

function value(block: Block, key: string): Token | undefined {
  return block.lines.find((l) => l[0]?.text === key)?.[1];
}

export function readInstance(conf: string, instance: string): VrrpInstance {
  const b = findInstance(conf, instance);
  const num = (key: string) => {
    const t = value(b, key);
    if (!t) return null;
    const n = Number(t.text);
    if (!Number.isFinite(n))
      throw new KeepalivedConfigError(`${instance}: ${key} "${t.text}" is not a number`);
    return n;
  };
  const vipBlock = b.children.find((c) => c.head[0]?.text === 'virtual_ipaddress')?.block;
  return {
    name: instance,
    state: value(b, 'state')?.text ?? null,
    interface: value(b, 'interface')?.text ?? null,
    virtualRouterId: num('virtual_router_id'),
    // keepalived's default priority is 100
    priority: num('priority') ?? 100,
    advertInt: num('advert_int'),
    nopreempt: b.lines.some((l) => l[0]?.text === 'nopreempt'),
    virtualIps: vipBlock ? vipBlock.lines.map((l) => l[0]!.text) : [],
  };
}

/** The configuration with the instance's priority set; unchanged text if it already was. */
export function setPriority(conf: string, instance: string, priority: number): string {
  if (!Number.isInteger(priority) || priority < 1 || priority > 255) {
    throw new KeepalivedConfigError(
      `priority must be a whole number from 1 to 255, got ${priority}`,
    );
  }
  const b = findInstance(conf, instance);
  const t = value(b, 'priority');
  if (t) {
    if (Number(t.text) === priority) return conf;
    return `${conf.slice(0, t.start)}${priority}${conf.slice(t.end)}`;
  }
  // No priority line: add one right after the opening brace.
  const at = b.openAt + 1;
  return `${conf.slice(0, at)}\n  priority ${priority}${conf.slice(at)}`;
}
