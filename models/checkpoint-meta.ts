// A checkpoint's string metadata: what run produced it (arch, method, epoch, step, config) and any extra
// fields the caller adds. Each extra is JSON under its own key, so it comes back with its type.

/** A checkpoint's metadata: architecture, method, epoch, step, configuration. */
export interface CheckpointMeta {
  arch: string;
  method: string;
  epoch: number;
  step: number;
  config: unknown;
  [extra: string]: unknown;
}

export const FORMAT_VERSION = '1';
/** Keys the checkpoint writer fills itself. */
const RESERVED = new Set(['format_version', 'checksum', 'optimizer']);

export function encodeMeta(meta: CheckpointMeta, optimizerJson?: string): Record<string, string> {
  const { arch, method, epoch, step, config, ...extra } = meta;
  if (typeof arch !== 'string' || !arch) throw new Error(`saveCheckpoint: meta.arch must be a non-empty string, got ${JSON.stringify(arch)}`);
  if (typeof method !== 'string' || !method) throw new Error(`saveCheckpoint: meta.method must be a non-empty string, got ${JSON.stringify(method)}`);
  for (const [k, v] of [['epoch', epoch], ['step', step]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`saveCheckpoint: meta.${k} must be a non-negative integer, got ${v}`);
  }
  const out: Record<string, string> = {
    format_version: FORMAT_VERSION,
    arch,
    method,
    epoch: String(epoch),
    step: String(step),
    config: toJson(config, 'meta.config'),
  };
  for (const [k, v] of Object.entries(extra)) {
    if (RESERVED.has(k)) throw new Error(`saveCheckpoint: meta.${k} is reserved for the checkpoint writer`);
    if (v !== undefined) out[k] = toJson(v, `meta.${k}`);
  }
  if (optimizerJson !== undefined) out.optimizer = optimizerJson;
  return out;
}

/** Validate and parse the metadata of a checkpoint (`source` names the file in errors). */
export function decodeMeta(md: Record<string, string>, source: string): CheckpointMeta {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (md.format_version === undefined) fail('not a checkpoint of this project (no format_version in its metadata)');
  if (md.format_version !== FORMAT_VERSION) fail(`format_version ${md.format_version} is not supported (this build reads ${FORMAT_VERSION})`);
  if (!/^[0-9a-f]{64}$/.test(md.checksum ?? '')) fail(`metadata checksum ${JSON.stringify(md.checksum)} is not a SHA-256 hex digest`);
  const int = (k: string): number => (/^\d+$/.test(md[k] ?? '') ? Number(md[k]) : fail(`metadata ${k} ${JSON.stringify(md[k])} is not a non-negative integer`));
  const str = (k: string): string => (md[k] ? md[k] : fail(`metadata ${k} is missing`));
  const meta: CheckpointMeta = { arch: str('arch'), method: str('method'), epoch: int('epoch'), step: int('step'), config: parseJson(str('config'), 'config', fail) };
  for (const [k, v] of Object.entries(md)) {
    // Extras are JSON when we wrote them; a string another tool added stays a string.
    if (!RESERVED.has(k) && !Object.hasOwn(meta, k)) meta[k] = tryJson(v);
  }
  return meta;
}

/** JSON that reads back to the same value: non-finite numbers (which JSON turns into null) are refused. */
export function toJson(value: unknown, what: string): string {
  const json = JSON.stringify(value, (k, v) => {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`saveCheckpoint: ${what}${k ? ` (field '${k}')` : ''} holds ${v}, which JSON cannot store`);
    return v;
  });
  return json ?? 'null';
}

export function parseJson(text: string, what: string, fail: (msg: string) => never): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`metadata ${what} is not valid JSON (${(e as Error).message})`);
  }
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
