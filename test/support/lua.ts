// Runs Argo CD resource customization scripts (health.lua, discovery.lua,
// action.lua) with a real Lua 5.1 interpreter (Argo CD runs gopher-lua, Lua
// 5.1 semantics): `obj` is the Kubernetes object as a Lua table, the
// script's return value comes back as JSON. Tests only; no skipping: without
// lua5.1 the caller fails with how to install it.
import { spawnSync } from 'node:child_process';

export const LUA = 'lua5.1';

/** Throws with the install line when lua5.1 is not on PATH. */
export function requireLua(): void {
  const r = spawnSync(LUA, ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${LUA} not found: apt-get install lua5.1 (Argo CD's health.lua tests need it)`,
    );
  }
}

/** A JSON value as a Lua literal (null fields are left out, as nil). */
export function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'nil';
  if (typeof v === 'string') {
    // Lua 5.1 has no \u escapes; decimal byte escapes cover everything.
    return `"${[...Buffer.from(v, 'utf8')]
      .map((b) => (b >= 32 && b < 127 && b !== 34 && b !== 92 ? String.fromCharCode(b) : `\\${b}`))
      .join('')}"`;
  }
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => `[${toLua(k)}] = ${toLua(x)}`)
      .join(', ')}}`;
  }
  throw new Error(`no Lua form for ${typeof v}`);
}

// A small JSON encoder in Lua: a table with keys 1..n is an array, any other
// a map; an empty table is {} (JSON cannot tell, nor can gopher-lua's).
const ENCODER = `
local function enc(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then return string.format("%.17g", v) end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\\\]', function(c) return string.format("\\\\u%04x", c:byte()) end) .. '"'
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n > 0 and #v == n then
    local parts = {}
    for i = 1, n do parts[i] = enc(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = enc(tostring(k)) .. ":" .. enc(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end
`;

/** Runs script (a chunk that returns a value) with obj bound; returns what it returned. */
export function runLua(script: string, obj: unknown): unknown {
  const program = `${ENCODER}\nobj = ${toLua(obj)}\nlocal function script()\n${script}\nend\nio.write(enc(script()))\n`;
  const r = spawnSync(LUA, ['-'], { input: program, encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`lua failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
