// The safetensors format (huggingface/safetensors), by hand: an 8-byte little-endian header length N,
// N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`
// (offsets relative to the data section), then the data section. The reader validates the layout the
// way the reference implementation does (ranges tile the data section exactly: no gap, no overlap,
// nothing after the last tensor; padding is allowed only as trailing spaces of the header) and names
// the tensor and the file in every error, so a bad file never turns into garbage weights.

import { DTYPES, encodeBits32, type TensorDType } from './dtypes.js';

export type { TensorDType } from './dtypes.js';

/** A tensor on the CPU as safetensors stores it: dtype, shape and values. */
export interface SafeTensor {
  dtype: TensorDType;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tensor as read: converted to F32 or I32, with the dtype the file stored it in. */
export interface LoadedTensor extends SafeTensor {
  stored: string;
}

/** A header entry, offsets relative to the data section. */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** The parsed header of a safetensors file: its tensor entries, metadata and where the data starts. */
export interface SafetensorsHeader {
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + N). */
  dataOffset: number;
}

const METADATA_KEY = '__metadata__';

/**
 * Parse and validate the header. `bytes` holds at least the first 8 + N bytes of a file of `fileSize`
 * bytes, so a caller can check a large file's layout without reading its data. `source` (a file name)
 * prefixes every error.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileSize: number, source = 'safetensors'): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (fileSize < 8) fail(`${fileSize} bytes is too short for a safetensors file (it starts with an 8-byte header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) fail(`header length ${n} exceeds the ${fileSize - 8} bytes that follow it (truncated or not a safetensors file)`);
  const dataOffset = 8 + Number(n);
  if (bytes.length < dataOffset) throw new Error(`readSafetensorsHeader: ${bytes.length} bytes given, the header needs ${dataOffset}`);
  const json = parseJson(bytes.subarray(8, dataOffset), fail);
  const metadata = checkMetadata(json[METADATA_KEY], fail);
  const entries = new Map<string, TensorEntry>();
  const dataSize = fileSize - dataOffset;
  for (const [name, info] of Object.entries(json)) {
    if (name !== METADATA_KEY) entries.set(name, checkEntry(name, info, dataSize, fail));
  }
  checkTiling(entries, dataSize, fail);
  return { entries, metadata, dataOffset };
}

/** Read a whole safetensors file: tensors converted to f32/i32, and the metadata. */
export function readSafetensors(
  bytes: Uint8Array,
  opts: { source?: string } = {},
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string>; dataOffset: number } {
  const source = opts.source ?? 'safetensors';
  const header = readSafetensorsHeader(bytes, bytes.length, source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, e] of header.entries) {
    const dt = DTYPES[e.dtype];
    const data = dt.decode(view, header.dataOffset + e.begin, numel(e.shape), `${source}: tensor '${name}'`);
    tensors.set(name, { dtype: dt.to, stored: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata: header.metadata, dataOffset: header.dataOffset };
}

function parseJson(raw: Uint8Array, fail: (msg: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(`header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 20))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) fail('header must be a JSON object');
  return json as Record<string, unknown>;
}

function checkMetadata(meta: unknown, fail: (msg: string) => never): Record<string, string> {
  if (meta === undefined || meta === null) return {};
  if (!isObject(meta)) return fail(`${METADATA_KEY} must be an object of strings`);
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') fail(`${METADATA_KEY} value of '${k}' is ${JSON.stringify(v)}, not a string`);
  }
  return { ...(meta as Record<string, string>) };
}

function checkEntry(name: string, info: unknown, dataSize: number, fail: (msg: string) => never): TensorEntry {
  const t = `tensor '${name}'`;
  if (!isObject(info)) return fail(`${t}: entry must be an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`${t}: dtype must be a string, got ${JSON.stringify(dtype)}`);
  const dt = DTYPES[dtype as string];
  if (!dt) fail(`${t} has dtype ${JSON.stringify(dtype)}, which this reader does not support (supported: ${Object.keys(DTYPES).join(', ')})`);
  if (!isIntArray(shape)) fail(`${t}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!isIntArray(offsets) || offsets.length !== 2) fail(`${t}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
  const [begin, end] = offsets as number[];
  if (end < begin) fail(`${t} has an inverted range [${begin}, ${end})`);
  const claimed = numel(shape as number[]) * dt.size;
  if (claimed !== end - begin) {
    fail(`${t} claims ${claimed} bytes (shape [${shape}] of ${dtype}) but its range holds ${end - begin}`);
  }
  if (end > dataSize) fail(`${t} range [${begin}, ${end}) extends past the data section of ${dataSize} bytes (truncated file?)`);
  return { dtype: dtype as string, shape: [...(shape as number[])], begin, end };
}

/** Ranges sorted by offset must cover the data section exactly, as the reference implementation requires. */
function checkTiling(entries: Map<string, TensorEntry>, dataSize: number, fail: (msg: string) => never): void {
  const sorted = [...entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const [name, e] of sorted) {
    if (e.begin < cursor) fail(`tensor '${name}' range [${e.begin}, ${e.end}) overlaps tensor '${prev}' (which ends at ${cursor})`);
    if (e.begin > cursor) fail(`${e.begin - cursor} unused bytes before tensor '${name}' (ranges must be contiguous)`);
    cursor = e.end;
    prev = name;
  }
  if (cursor !== dataSize) fail(`${dataSize - cursor} bytes of trailing data after the last tensor (the data section holds ${dataSize}, tensors cover ${cursor})`);
}

// ---------------------------------------------------------------- writing

/** A safetensors file in two parts: the data section, and a function that writes the header for given metadata. */
export interface EncodedSafetensors {
  /** The data section: tensors sorted by name, back to back. */
  data: Uint8Array;
  /** The 8-byte length and the JSON header for this data, with `metadata`. */
  header(metadata?: Record<string, string>): Uint8Array;
}

/**
 * Lay out tensors without building the file yet, so a caller can hash the data section and put the
 * digest into the metadata (and write header and data without concatenating them).
 */
export function encodeSafetensors(tensors: Record<string, SafeTensor>): EncodedSafetensors {
  const names = Object.keys(tensors).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries = new Map<string, { dtype: TensorDType; shape: number[]; data_offsets: [number, number] }>();
  let size = 0;
  for (const name of names) {
    const t = checkTensor(name, tensors[name]);
    entries.set(name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [size, size + 4 * t.data.length] });
    size += 4 * t.data.length;
  }
  const data = new Uint8Array(size);
  const view = new DataView(data.buffer);
  for (const name of names) encodeBits32(tensors[name].data, view, entries.get(name)!.data_offsets[0]);
  return { data, header: (metadata) => encodeHeader(entries, metadata) };
}

/** A complete safetensors file (header padded with spaces to a multiple of 8, tensors sorted by name). */
export function writeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const enc = encodeSafetensors(tensors);
  const head = enc.header(metadata);
  const out = new Uint8Array(head.length + enc.data.length);
  out.set(head);
  out.set(enc.data, head.length);
  return out;
}

function checkTensor(name: string, t: SafeTensor): SafeTensor {
  if (!name || name === METADATA_KEY) throw new Error(`writeSafetensors: invalid tensor name '${name}'`);
  const expected = t.dtype === 'F32' ? Float32Array : t.dtype === 'I32' ? Int32Array : null;
  if (!expected) throw new Error(`writeSafetensors: tensor '${name}' has dtype '${t.dtype}'; only F32 and I32 are written`);
  if (!(t.data instanceof expected)) throw new Error(`writeSafetensors: tensor '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`);
  if (!isIntArray(t.shape) || numel(t.shape) !== t.data.length) {
    throw new Error(`writeSafetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
  }
  return t;
}

function encodeHeader(entries: Map<string, unknown>, metadata?: Record<string, string>): Uint8Array {
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata '${k}' must be a string, got ${typeof v}`);
    }
  }
  // The reference writer puts __metadata__ first; tensors follow in data order. Joined by hand because
  // a JS object would move integer-like names ('12') to the front.
  const fields = [...entries].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  if (metadata) fields.unshift(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  // Spaces up to a multiple of 8 keep the data section 8-byte aligned (the reference does the same).
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

// ---------------------------------------------------------------- helpers

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isObject(x: unknown): boolean {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isIntArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => Number.isSafeInteger(d) && d >= 0);
}
