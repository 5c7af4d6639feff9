// The launcher behind every elementwise op: broadcasting, strided inputs, up to three operands.

import type { Engine, Tensor } from '../engine.js';
import { broadcastShapes, collapseDims, numel, sameShape, type Shape } from '../shape.js';
import { defineKernel } from '../kernel.js';
import source from './elementwise.wgsl';

const MAX_RANK = 8;

/**
 * One declaration for every elementwise op: the inputs present and their element types (vec4 or f32,
 * see elementwise.wgsl), the expression and the addressing variant are chosen per launch.
 */
const elementwise = defineKernel({
  name: 'elementwise',
  source,
  workgroupSize: 256,
  uniforms: {
    n: 'u32',
    rank: 'u32',
    chunks: 'u32',
    s: 'vec4<f32>',
    off: 'vec4<u32>',
    shape: 'array<vec4<u32>, 2>',
    str0: 'array<vec4<u32>, 2>',
    str1: 'array<vec4<u32>, 2>',
    str2: 'array<vec4<u32>, 2>',
  },
  inputs: {
    in0: { type: '${T0}', dtype: 'f32', optional: true },
    in1: { type: '${T1}', dtype: 'f32', optional: true },
    in2: { type: '${T2}', dtype: 'f32', optional: true },
  },
  outputs: { out: { type: 'V', dtype: 'f32' } },
  strided: ['in0', 'in1', 'in2'],
});

export function checkInputs(op: string, inputs: Tensor[]): Engine {
  const engine = inputs[0].engine;
  for (const t of inputs) {
    t.assertAlive(op);
    if (t.engine !== engine) throw new Error(`${op}: ${t} lives on another device than ${inputs[0]}`);
  }
  return engine;
}

/** Strides of `t` seen through a broadcast to `shape` (0 along broadcast axes). */
function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
}

/**
 * Units (elements or vec4s) per invocation along the innermost axis of a strided launch. A CPU adapter
 * runs integer division one lane at a time, so it pays for locating a row once per several units; a
 * GPU keeps one unit per invocation, where neighbouring invocations read neighbouring addresses.
 */
export function chunkFor(engine: Engine): number {
  return engine.backend.isCpuAdapter ? 8 : 1;
}

/**
 * The launch in vec4 units (see elementwise.wgsl), or null when the layout does not allow it:
 * the merged innermost axis must be a multiple of 4 (or the only axis, the tail then written into the
 * output's padding), and each input must walk it with stride 1 (read as vec4s: its offset and outer
 * strides must be multiples of 4 and are given in vec4s) or stride 0 (read once and splat).
 */
function vec4Layout(shape: number[], strides: number[][], offsets: number[]): { shape: number[]; strides: number[][]; offsets: number[] } | null {
  const last = shape.length - 1;
  if (shape[last] % 4 !== 0 && last > 0) return null;
  const vecInput = (s: number[]) => s[last] === 1;
  const fits = strides.every((s, k) => s[last] === 0 || (vecInput(s) && offsets[k] % 4 === 0 && s.every((v, d) => d === last || v % 4 === 0)));
  if (!fits) return null;
  return {
    shape: shape.map((d, i) => (i === last ? Math.ceil(d / 4) : d)),
    strides: strides.map((s) => (vecInput(s) ? s.map((v, d) => (d === last ? 1 : v / 4)) : s)),
    offsets: offsets.map((o, k) => (vecInput(strides[k]) ? o / 4 : o)),
  };
}

/** How a launch walks the operands: in units (vec4 or f32), merged axes, each input's strides and offset. */
interface Layout {
  shape: number[];
  strides: number[][];
  offsets: number[];
  vec: boolean;
  /** Each input's element type: vec4<f32> when read as vec4s, f32 when read per element or splat. */
  types: string[];
}

const VEC_TYPES = [[], ['vec4<f32>'], ['vec4<f32>', 'vec4<f32>'], ['vec4<f32>', 'vec4<f32>', 'vec4<f32>']];
const F32_TYPES = [[], ['f32'], ['f32', 'f32'], ['f32', 'f32', 'f32']];
const UNIT_STRIDES = [[], [[1]], [[1], [1]], [[1], [1], [1]]];

/**
 * The common case inside a network, without the general path's axis merging: every input contiguous
 * and of the output's shape, so one axis of n elements (vec4s when every offset allows).
 */
function sameShapeLayout(scratch: MapScratch, inputs: Tensor[], shape: Shape, n: number): Layout | null {
  let vec = true;
  for (let k = 0; k < inputs.length; k++) {
    const t = inputs[k];
    if (!sameShape(t.shape, shape) || !t.isContiguous()) return null;
    if (t.offset % 4 !== 0) vec = false;
  }
  // The device's one layout object, rewritten by every launch of this path (mapKernel reads it at once).
  const unit = vec ? 4 : 1;
  const l = scratch.sameShape;
  const offsets = scratch.sameShapeOffsets[inputs.length];
  for (let k = 0; k < inputs.length; k++) offsets[k] = inputs[k].offset / unit;
  l.shape[0] = Math.ceil(n / unit);
  l.strides = UNIT_STRIDES[inputs.length];
  l.offsets = offsets;
  l.vec = vec;
  l.types = (vec ? VEC_TYPES : F32_TYPES)[inputs.length];
  return l;
}


/** Any layout: broadcast inputs (stride 0), views, with the axes that every operand walks alike merged. */
function generalLayout(op: string, inputs: Tensor[], shape: Shape, out: Tensor): Layout {
  // The output is contiguous, so merging axes that all inputs also walk contiguously keeps indexing valid.
  const flat = collapseDims(shape, [out.strides, ...inputs.map((t) => broadcastStrides(t, shape))]);
  const rank = flat.shape.length;
  if (rank > MAX_RANK) throw new Error(`${op}: rank ${rank} exceeds ${MAX_RANK} after merging contiguous axes`);
  const strides = flat.strides.slice(1);
  const offsets = inputs.map((t) => t.offset);
  const vec = vec4Layout(flat.shape, strides, offsets);
  return {
    shape: vec?.shape ?? flat.shape,
    strides: vec?.strides ?? strides,
    offsets: vec?.offsets ?? offsets,
    vec: !!vec,
    types: inputs.map((_, k) => (vec && strides[k][rank - 1] === 1 ? 'vec4<f32>' : 'f32')),
  };
}

/**
 * out = EXPR(a, b, c, s) elementwise, with NumPy broadcasting. `expr` is WGSL over f32 values a, b, c
 * and the vec4 of scalars s. Returns a new contiguous tensor of the broadcast shape.
 */
export function mapKernel(
  op: string,
  expr: string,
  inputs: Tensor[],
  scalars: readonly number[] = [],
  engineHint?: Engine,
  outShape?: Shape,
): Tensor {
  const engine = inputs.length ? checkInputs(op, inputs) : engineHint!;
  const shape = outShape ?? (inputs.length === 1 ? inputs[0].shape : broadcastShapes(op, ...inputs.map((t) => t.shape)));
  for (const t of inputs) {
    if (t.dtype !== 'f32') throw new Error(`${op}: expects f32 inputs, got ${t}`);
  }
  const out = engine.empty(shape);
  const n = numel(shape);
  if (n === 0) return out;
  const scratch = engine.backend.scratchFor(MapScratch, newMapScratch);
  const { uniforms: u, operands, output, launch: a, variant: v } = scratch;
  try {
    const l = sameShapeLayout(scratch, inputs, shape, n) ?? generalLayout(op, inputs, shape, out);
    const rank = l.shape.length;
    const chunk = rank > 1 ? chunkFor(engine) : 1;
    const inner = l.shape[rank - 1];
    const chunks = Math.ceil(inner / chunk);
    const invocations = (numel(l.shape) / inner) * chunks;
    scratch.grid.invocations = invocations;
    u.n = invocations;
    u.rank = rank;
    u.chunks = chunks;
    for (let k = 0; k < 4; k++) {
      u.s[k] = k < scalars.length ? scalars[k] : 0;
      u.off[k] = k < l.offsets.length ? l.offsets[k] : 0;
    }
    u.shape = l.shape;
    u.str0 = l.strides[0] ?? NONE;
    u.str1 = l.strides[1] ?? NONE;
    u.str2 = l.strides[2] ?? NONE;
    for (let k = 0; k < 3; k++) operands[k] = inputs[k];
    output[0] = out;
    a.name = op;
    a.key = variantKey(expr, l.types, l.vec, rank > 1, chunk);
    a.bytes = (inputs.length + 1) * n * 4;
    v.types = l.types;
    v.vec = l.vec;
    v.strided = rank > 1;
    v.chunk = chunk;
    v.expr = expr;
    elementwise.launch(a);
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    // The scratch keeps no tensor alive past its launch.
    operands.fill(undefined);
    output[0] = undefined;
  }
  return out;
}

/** The variant of a launch, for its defines (read only when the variant is new). */
interface Variant {
  types: readonly string[];
  vec: boolean;
  strided: boolean;
  chunk: number;
  expr: string;
}

function variantDefines(v: Variant) {
  return { T0: v.types[0] ?? 'f32', T1: v.types[1] ?? 'f32', T2: v.types[2] ?? 'f32', VEC: v.vec, STRIDED: v.strided, CHUNK: v.chunk, EXPR: v.expr };
}

/** Variant keys by expression, then by the layout's code: each launch finds its key without building a string. */
const KEYS = new Map<string, Map<number, string>>();

/** The launch's variant key (LaunchArgs.key): the expression and everything the layout sets in the defines. */
function variantKey(expr: string, types: readonly string[], vec: boolean, strided: boolean, chunk: number): string {
  let code = types.length;
  for (let k = 0; k < types.length; k++) if (types[k] !== 'f32') code |= 4 << k;
  code |= (vec ? 32 : 0) | (strided ? 64 : 0) | (chunk << 7);
  let byCode = KEYS.get(expr);
  if (!byCode) KEYS.set(expr, (byCode = new Map()));
  let key = byCode.get(code);
  if (key === undefined) byCode.set(code, (key = `${code}|${expr}`));
  return key;
}

const NONE: number[] = [];

/**
 * One device's reusable launch state (Runtime.scratchFor): one uniforms object, operand list, grid
 * and launch serve every elementwise launch on it, so a hot op allocates none of them. launch() packs
 * and binds them at once; mapKernel empties the operand lists when it ends, thrown or not.
 */
class MapScratch {
  readonly operands: (Tensor | undefined)[] = [undefined, undefined, undefined];
  readonly output: (Tensor | undefined)[] = [undefined];
  readonly grid = { invocations: 0 };
  readonly sameShape: Layout = { shape: [0], strides: [], offsets: [], vec: false, types: [] };
  readonly sameShapeOffsets = [[], [0], [0, 0], [0, 0, 0]];
  readonly variant: Variant = { types: [], vec: false, strided: false, chunk: 1, expr: '' };
  readonly uniforms = {
    n: 0,
    rank: 0,
    chunks: 0,
    s: [0, 0, 0, 0],
    off: [0, 0, 0, 0],
    shape: NONE,
    str0: NONE,
    str1: NONE,
    str2: NONE,
  };
  readonly launch: Parameters<typeof elementwise.launch>[0] = {
    inputs: this.operands,
    outputs: this.output,
    uniforms: this.uniforms,
    grid: this.grid,
    defines: () => variantDefines(this.variant),
    name: '',
    key: '',
    bytes: 0,
  };
}

function newMapScratch(): MapScratch {
  return new MapScratch();
}
