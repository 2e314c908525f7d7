// The JSON merge patch (RFC 7386) that turns `from` into `to`: changed and
// new keys set, removed keys set to null. Arrays are replaced whole, as the
// RFC says. Pure. Used for status writes so a field the reconciler dropped
// (a finished currentStep) really goes, which a plain merge would keep.
// biome-ignore lint/suspicious/noExplicitAny: JSON values
type Json = any;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergePatchBetween(from: Json, to: Json): Json {
  if (!isObject(from) || !isObject(to)) return to === undefined ? null : to;
  const patch: Record<string, Json> = {};
  for (const key of Object.keys(from)) {
    if (to[key] === undefined) patch[key] = null;
  }
  for (const [key, value] of Object.entries(to)) {
    if (value === undefined) continue;
    if (JSON.stringify(from[key]) === JSON.stringify(value)) continue;
    patch[key] =
      isObject(from[key]) && isObject(value) ? mergePatchBetween(from[key], value) : value;
  }
  return patch;
}
