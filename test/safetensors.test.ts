// safetensors by hand: the writer's bytes against the format written out by hand, the reader on a file
// PyTorch made (every accepted dtype, against the values PyTorch converts them to), bit-exact round trips
// of tensors and of a module's state dict, and every kind of corrupt file refused with an error that
// names the file and the tensor.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { io } from '../engine/index.js';
import { engine } from './helpers.js';
import { bits, Net, stateBits } from './state-net.js';

const SRC = 'checkpoint.safetensors';

/** A file with an arbitrary header (string or object), padded with spaces to 8, and raw data. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + data.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.set(data, 8 + n);
  return out;
}

const read = (bytes: Uint8Array) => io.readSafetensors(bytes, { source: SRC });

describe('safetensors format', () => {
  it('writer: the exact bytes of the format (length, sorted header with __metadata__ first, space padding, data)', () => {
    const file = io.writeSafetensors(
      { b: { dtype: 'F32', shape: [1], data: Float32Array.of(1) }, a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, -1) } },
      { k: 'v' },
    );
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
    const n = Math.ceil(json.length / 8) * 8;
    expect(n).toBeGreaterThan(json.length); // the case exercises padding
    const expected = [
      ...[n, 0, 0, 0, 0, 0, 0, 0],
      ...new TextEncoder().encode(json.padEnd(n, ' ')),
      ...[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x80, 0x3f],
    ];
    expect(Array.from(file)).toEqual(expected);
  });

  it('writer: tensors sorted by name in header and data (integer-like names too), data 8-aligned', () => {
    const names = ['10', '9', 'fc.weight', 'Z', 'layer1.0.conv1.weight'];
    const tensors = Object.fromEntries(names.map((n, i) => [n, { dtype: 'F32' as const, shape: [i + 1], data: new Float32Array(i + 1).fill(i) }]));
    const file = io.writeSafetensors(tensors);
    const header = io.readSafetensorsHeader(file, file.length);
    expect(header.dataOffset % 8).toBe(0);
    const text = new TextDecoder().decode(file.subarray(8, header.dataOffset));
    const sorted = [...names].sort();
    expect(sorted).toEqual(['10', '9', 'Z', 'fc.weight', 'layer1.0.conv1.weight']);
    expect(sorted.map((n) => text.indexOf(`"${n}"`))).toEqual(sorted.map((n) => text.indexOf(`"${n}"`)).sort((a, b) => a - b));
    expect(sorted.map((n) => header.entries.get(n)!.begin)).toEqual(sorted.map((n) => header.entries.get(n)!.begin).sort((a, b) => a - b));
  });

  it('round trip is bit-exact: NaN payloads, -0, subnormals, infinities, i32 extremes, scalars, empty tensors', () => {
    const f = new Float32Array(7);
    new Uint32Array(f.buffer).set([0x7fa00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x3eaaaaab]);
    const tensors = {
      'a.f': { dtype: 'F32' as const, shape: [7], data: f },
      'a.i': { dtype: 'I32' as const, shape: [2, 2], data: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, -5) },
      scalar: { dtype: 'F32' as const, shape: [], data: Float32Array.of(-2.75) },
      empty: { dtype: 'F32' as const, shape: [3, 0], data: new Float32Array(0) },
    };
    const { tensors: back, metadata } = read(io.writeSafetensors(tensors, { epoch: '3', 'nön-ascii': 'ü' }));
    expect(metadata).toEqual({ epoch: '3', 'nön-ascii': 'ü' });
    expect([...back.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.get(name)!;
      expect([b.dtype, b.stored, b.shape], name).toEqual([t.dtype, t.dtype, t.shape]);
      expect(b.data.constructor).toBe(t.data.constructor);
      expect(bits(b.data), name).toEqual(bits(t.data));
    }
  });

  it('reads a PyTorch-made file of every accepted dtype to the values PyTorch converts them to', () => {
    const fixture = readFileSync(new URL('./fixtures/dtypes.safetensors', import.meta.url));
    const expected = JSON.parse(readFileSync(new URL('./fixtures/dtypes.json', import.meta.url), 'utf8')) as Record<
      string,
      { dtype: string; shape: number[]; values: (number | string)[] }
    >;
    const { tensors, metadata } = read(fixture);
    expect(metadata.note).toBe('dtype fixture');
    expect([...tensors.keys()].sort()).toEqual(Object.keys(expected).sort());
    expect(Object.values(expected).map((e) => e.dtype).sort()).toEqual(['BF16', 'BOOL', 'F16', 'F32', 'F32', 'F32', 'F64', 'I32', 'I64', 'U8']);
    for (const [name, exp] of Object.entries(expected)) {
      const t = tensors.get(name)!;
      const isFloat = exp.dtype.startsWith('F') || exp.dtype === 'BF16';
      expect([t.stored, t.dtype, t.shape], name).toEqual([exp.dtype, isFloat ? 'F32' : 'I32', exp.shape]);
      const want = exp.values.map((v) => (typeof v === 'string' ? Number(v.replace('inf', 'Infinity')) : v));
      const wantArr = isFloat ? Float32Array.from(want) : Int32Array.from(want);
      // Bits, so -0 and subnormals count; NaN only by being NaN (its payload is not part of the contract).
      const nan = (a: Float32Array | Int32Array) => bits(a).map((b, i) => (Number.isNaN(a[i]) ? 'nan' : b));
      expect(nan(t.data), name).toEqual(nan(wantArr));
    }
    expect(tensors.get('f16.values')!.data[3]).toBe(2 ** -24); // f16 subnormal
    expect(Object.is(tensors.get('f32.matrix')!.data[3], -0)).toBe(true);
  });

  it('writer refuses what it cannot write faithfully', () => {
    expect(() => io.writeSafetensors({ w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) } })).toThrow(/tensor 'w' has 5 values for shape \[2,3\]/);
    expect(() => io.writeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Int32Array(2) } })).toThrow(/'w' is F32 but its data is a Int32Array/);
    expect(() => io.writeSafetensors({ w: { dtype: 'F16' as 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(/only F32 and I32/);
    expect(() => io.writeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(/invalid tensor name/);
    expect(() => io.writeSafetensors({}, { n: 3 as unknown as string })).toThrow(/metadata 'n' must be a string/);
  });
});

describe('corrupt files are refused with errors naming the file and the tensor', () => {
  const good = io.writeSafetensors({
    'layer1.0.conv1.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
    'layer1.0.conv1.bias': { dtype: 'F32', shape: [2], data: Float32Array.of(7, 8) },
  });
  const w = (begin: number, end: number, shape = [2], dtype = 'F32') => ({ dtype, shape, data_offsets: [begin, end] });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['truncated data', () => good.subarray(0, good.length - 3), /tensor 'layer1\.0\.conv1\.weight' range \[8, 32\) extends past the data section of 29 bytes \(truncated file\?\)/],
    ['truncated header', () => good.subarray(0, 40), /header length \d+ exceeds the 32 bytes that follow it/],
    ['shorter than the length prefix', () => good.subarray(0, 5), /5 bytes is too short for a safetensors file/],
    ['header length beyond the file', () => { const b = good.slice(); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; }, /header length 1099511627776 exceeds/],
    ['bad JSON', () => rawFile('{"w": {"dtype": "F32",'), /header is not valid JSON/],
    ['header not an object', () => rawFile('[1, 2]'), /header must be a JSON object starting with '\{'/],
    ['invalid UTF-8', () => rawFile(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d)), /header is not valid UTF-8/],
    ['overlapping ranges', () => rawFile({ a: w(0, 8), b: w(4, 12) }, new Uint8Array(12)), /tensor 'b' range \[4, 12\) overlaps tensor 'a'/],
    ['a gap between ranges', () => rawFile({ a: w(0, 8), b: w(12, 20) }, new Uint8Array(20)), /4 unused bytes before tensor 'b'/],
    ['trailing garbage after the last range', () => rawFile({ a: w(0, 8) }, new Uint8Array(11)), /3 bytes of trailing data after the last tensor/],
    ['wrong size for the shape', () => rawFile({ 'layer1.0.conv1.weight': w(0, 12, [2, 3]) }, new Uint8Array(12)), /tensor 'layer1\.0\.conv1\.weight' claims 24 bytes \(shape \[2,3\] of F32\) but its range holds 12/],
    ['inverted range', () => rawFile({ a: w(8, 0) }, new Uint8Array(8)), /tensor 'a' has an inverted range \[8, 0\)/],
    ['unknown dtype', () => rawFile({ a: w(0, 8, [2], 'Q4') }, new Uint8Array(8)), /tensor 'a' has dtype "Q4", which this reader does not support \(supported: F32, I32, BF16/],
    ['unsupported dtype', () => rawFile({ a: w(0, 4, [2], 'I16') }, new Uint8Array(4)), /tensor 'a' has dtype "I16", which this reader does not support/],
    ['bad shape', () => rawFile({ a: w(0, 8, [2.5] as number[]) }, new Uint8Array(8)), /tensor 'a': shape must be an array of non-negative integers, got \[2.5\]/],
    ['bad data_offsets', () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, new Uint8Array(8)), /tensor 'a': data_offsets must be \[begin, end\]/],
    ['non-string metadata', () => rawFile({ __metadata__: { epoch: 3 } }), /__metadata__ value of 'epoch' is 3, not a string/],
    ['I64 beyond i32', () => rawFile({ steps: w(0, 8, [1], 'I64') }, new Uint8Array(new BigInt64Array([1n << 31n]).buffer)), /tensor 'steps' \(I64\) holds 2147483648 at element 0, outside the i32 range/],
    ['I64 below i32', () => rawFile({ steps: w(0, 8, [1], 'I64') }, new Uint8Array(new BigInt64Array([-(1n << 31n) - 1n]).buffer)), /holds -2147483649 at element 0/],
    ['BOOL byte other than 0/1', () => rawFile({ m: w(0, 2, [2], 'BOOL') }, Uint8Array.of(1, 2)), /tensor 'm' \(BOOL\) holds byte 2 at element 1/],
    ['F64 beyond f32', () => rawFile({ x: w(0, 8, [1], 'F64') }, new Uint8Array(Float64Array.of(1e300).buffer)), /tensor 'x' \(F64\) holds 1e\+300 at element 0, beyond the f32 range/],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      const bytes = make();
      let err: Error | null = null;
      try {
        read(bytes);
      } catch (e) {
        err = e as Error;
      }
      expect(err, `${what} was accepted`).not.toBeNull();
      expect(err!.message.startsWith(`${SRC}: `), err!.message).toBe(true);
      expect(err!.message).toMatch(message);
    });
  }

  it('the hand-made files above are valid once the defect is fixed (the cases test one defect each)', () => {
    expect(read(good).tensors.size).toBe(2);
    expect(read(rawFile({ a: w(0, 8), b: w(8, 16) }, new Uint8Array(16))).tensors.size).toBe(2);
    expect(read(rawFile({ steps: w(0, 8, [1], 'I64') }, new Uint8Array(new BigInt64Array([-(1n << 31n)]).buffer))).tensors.get('steps')!.data[0]).toBe(-(2 ** 31));
    expect(read(rawFile({ __metadata__: { epoch: '3' } })).metadata).toEqual({ epoch: '3' });
  });
});

describe('module state dicts through safetensors', async () => {
  const e = await engine();

  it('round trip of a state dict is bit-exact, buffers and i32 scalars included', async () => {
    const a = new Net(e, 1);
    const b = new Net(e, 2);
    // Values a careless path would alter: -0, a subnormal, an f32 that is not a short decimal.
    a.fc.bias!.engine.backend.write(a.fc.bias!.buffer, 0, Float32Array.of(-0, 1e-40, 1 / 3));
    const want = await stateBits(a.stateDict());
    const before = await stateBits(b.stateDict());
    expect(Object.keys(want).filter((n) => JSON.stringify(want[n]) === JSON.stringify(before[n]))).toEqual([]);
    const file = await io.moduleToSafetensors(a, { arch: 'net' });
    const { tensors } = read(file);
    expect(tensors.get('layer1.1.num_batches_tracked')).toMatchObject({ dtype: 'I32', shape: [] });
    expect(io.loadSafetensorsInto(b, file)).toEqual({ missing: [], unexpected: [] });
    expect(await stateBits(b.stateDict())).toEqual(want);
    a.dispose();
    b.dispose();
  });

  it('missing, unexpected and mis-shaped tensors are named; a refused load modifies nothing', async () => {
    const src = new Net(e, 1);
    const file = await io.moduleToSafetensors(src);
    const other = new Net(e, 3, { fcOut: 2, extra: true, oneBlock: true });
    const before = await stateBits(other.stateDict());
    const mis = /mis-shaped: fc\.weight: expected \[2, 4\], got \[3, 4\]; fc\.bias: expected \[2\], got \[3\]/;
    const strictErr = /missing: extra\.weight \| unexpected: layer1\.1\.conv1\.bias, layer1\.1\.conv1\.weight, layer1\.1\.num_batches_tracked, layer1\.1\.running_mean/;
    expect(() => io.loadSafetensorsInto(other, file, { source: SRC })).toThrow(new RegExp(`^${SRC}: loadStateDict into Net: ${mis.source}`));
    expect(() => io.loadSafetensorsInto(other, file)).toThrow(strictErr);
    expect(() => io.loadSafetensorsInto(other, file, { strict: false })).toThrow(mis);
    expect(await stateBits(other.stateDict())).toEqual(before);
    other.dispose();

    const partial = new Net(e, 4, { extra: true, oneBlock: true });
    const extraBefore = await stateBits({ w: (partial.stateDict()['extra.weight']) });
    expect(() => io.loadSafetensorsInto(partial, file)).toThrow(strictErr);
    expect(io.loadSafetensorsInto(partial, file, { strict: false })).toEqual({
      missing: ['extra.weight'],
      unexpected: ['layer1.1.conv1.bias', 'layer1.1.conv1.weight', 'layer1.1.num_batches_tracked', 'layer1.1.running_mean'],
    });
    const want = await stateBits(src.stateDict());
    const got = await stateBits(partial.stateDict());
    for (const n of Object.keys(got).filter((k) => k !== 'extra.weight')) expect(got[n], n).toEqual(want[n]);
    expect(got['extra.weight']).toEqual(extraBefore.w);
    src.dispose();
    partial.dispose();
  });
});
