// The public way to write a GPU kernel. A kernel is declared once: its WGSL, its default workgroup
// size, its uniform fields in order and its storage bindings. From that declaration the engine
// generates the WGSL uniform struct and the binding declarations (so they cannot drift from the host
// side), packs the uniform values by WGSL's layout rules, and checks every launch: tensor count,
// dtype, contiguity, liveness and device, and a value for every uniform field and none besides.
//
// Binding 0 is the uniform block `u`; inputs follow from binding 1 (read-only), then the outputs
// (read_write, which also lets a kernel update a tensor in place).
//
// What the API fills in, so that no op passes it by hand:
// - Tensor offsets. A kernel that reads `u.off_<name>` gets that uniform generated for binding
//   `<name>` and filled at each launch with the tensor's offset, in scalars (f32/i32 words). A
//   binding declared vec2/vec4 divides it by 2/4 and the launch refuses an offset that is not a
//   multiple; one whose element type is a template value leaves that check to its op. An optional
//   binding left out gets 0. Declaring `off_<name>` as a uniform, or passing it, is an error. A
//   binding whose offset the kernel does not read (nor, for a strided one, takes through uniforms of
//   its own) refuses a tensor at a non-zero offset instead of reading the wrong elements.
// - The grid. A launch gives `grid: { invocations: n }` (or `{ workgroups: n }`) instead of
//   `workgroups`: the API splits it over a 2-D grid (one dimension holds at most 65535 workgroups)
//   at the launch's workgroup size and, when the kernel reads `u.row_width` (the "grid" and "rows"
//   snippets' flat index) without declaring it, fills that generated uniform (0 in a launch by
//   `workgroups`, which is for kernels whose grid has a meaning of its own). A kernel that declares
//   `row_width` itself passes it, from KernelDef.grid().
// - Variants. A launch may set its own `workgroupSize` and `defines` (template values): the generated
//   WG_X, WG_Y, WG_Z and WG constants follow the launch's size, and the runtime compiles one pipeline
//   per kernel and set of template values, so one declaration serves every tile or row layout. A
//   launch's `key` names its variant (with its workgroup size) so that a hot op skips building the
//   runtime's cache key.

import type { Tensor } from './engine.js';
import type { DispatchArgs, Kernel } from './runtime.js';
import { grid1d, gridRows, UNIFORM_SLOT } from './runtime.js';
import { resolveIncludes, SNIPPETS, type Defines, type Snippets } from './shader.js';

export { grid1d };

/** WGSL scalar types a uniform or binding may hold. */
export type ScalarType = 'u32' | 'i32' | 'f32';
/** A scalar type or a vec2/vec4 of one. */
export type VectorType = ScalarType | `vec2<${ScalarType}>` | `vec4<${ScalarType}>`;
/**
 * A uniform field: a scalar, a vec2 or vec4, or an array of N vec4s (`array<vec4<u32>, 2>`: the
 * uniform address space needs 16-byte array strides, so per-axis shapes and strides of up to 4·N axes
 * are packed four to a vec4). An array takes at most 4·N numbers; the lanes past them are zero.
 */
export type UniformType = VectorType | `array<vec4<${ScalarType}>, ${number}>`;
/** Uniform fields in declaration order, e.g. `{ n: 'u32', scale: 'f32', mean: 'vec4<f32>' }`. */
export type UniformFields = Record<string, UniformType>;
/** The JavaScript value of one uniform: a number (or boolean) for a scalar, numbers for a vector or array. */
export type UniformValue<T extends UniformType> = T extends ScalarType ? number | boolean : readonly number[];
/** Values of every uniform of a declaration, checked against its types. */
export type UniformValues<U extends UniformFields> = { [K in keyof U]: UniformValue<U[K]> };

/**
 * The element type of a storage binding (`array<T>`). f32 and vec*<f32> bind f32 tensors, i32 and
 * vec*<i32> bind i32 tensors; u32 and vec*<u32> bind any tensor and read its 32-bit words as they are
 * (the engine has no u32 dtype: a kernel that moves bits, or unpacks bytes, declares u32).
 */
export type BindingType = VectorType;
/**
 * A storage binding whose element type is chosen per launch, or that a launch may leave out.
 * `type` is WGSL: a type above, or a template value or alias the kernel's source defines (`${T0}`,
 * `V`); `dtype` is then what tensors it takes (u32: any, as above). An optional binding is declared
 * only when a launch passes a tensor for it (the source tests `HAS_<NAME>`, the name upper-cased), and
 * the bindings after it move up one.
 */
export interface BindingSpec {
  type: string;
  dtype: ScalarType;
  optional?: boolean;
}
/** The template value that tells a kernel's source whether optional binding `name` is declared. */
export function hasFlag(name: string): string {
  return `HAS_${name.toUpperCase()}`;
}
/** Storage bindings in order: name → element type. */
export type Bindings = Record<string, BindingType | BindingSpec>;

/** A kernel declaration: name, WGSL body, workgroup size, uniforms and the input and output bindings. */
export interface KernelSpec<U extends UniformFields> {
  /** Names the pipeline in errors and profiles. */
  name: string;
  /** WGSL (a shader.ts template), without the uniform struct and bindings: those are generated. */
  source: string;
  /**
   * @workgroup_size of a launch that sets none; the generated WG_X, WG_Y, WG_Z and WG (their product)
   * constants hold the launch's size (write `@workgroup_size(WG)` or `(WG_X, WG_Y)`).
   */
  workgroupSize: WorkgroupSize;
  /**
   * The uniform fields a launch passes, in order. `off_<binding>` and (unless declared here)
   * `row_width` are generated when the source reads them, after these (see this file's header).
   */
  uniforms: U;
  /** Read-only storage bindings, from binding 1. */
  inputs: Bindings;
  /** Read-write storage bindings, after the inputs. */
  outputs: Bindings;
  /** Template values fixed for this kernel; a launch adds its own. */
  defines?: Defines;
  /** Snippets for `#include`, besides the engine's own (shader.ts). */
  snippets?: Snippets;
  /**
   * Bindings the kernel addresses through strides it receives as uniforms: their tensors may be views
   * of any layout. Every other binding takes a contiguous tensor.
   */
  strided?: readonly string[];
}

/** A workgroup size: x, or x, y and z (each defaults to 1). */
export type WorkgroupSize = number | readonly [number, number?, number?];

/**
 * A 1-D launch that the API splits over a 2-D grid at the launch's workgroup size: `invocations`
 * threads (workgroups = ceil(n / WG)), or `workgroups` workgroups. A kernel reaching its flat index
 * through the "grid" or "rows" snippet gets the generated `row_width` uniform filled to match.
 */
export type LaunchGrid = { invocations: number; workgroups?: undefined } | { workgroups: number; invocations?: undefined };

/**
 * One launch of a declared kernel: tensors for its bindings in declaration order, uniform values, and
 * either workgroup counts or a grid.
 */
export interface LaunchArgs<U extends UniformFields> {
  /** One per declared binding, in order; null leaves out an optional one. */
  inputs: readonly (Tensor | null | undefined)[];
  outputs: readonly (Tensor | null | undefined)[];
  /** The declared uniforms' values (not the generated `off_<name>` and `row_width`). */
  uniforms: UniformValues<U>;
  /** Workgroup counts per dimension, when the launch gives no `grid`. */
  workgroups?: readonly [number, number?, number?];
  /** A 1-D launch split by the API (see LaunchGrid), instead of `workgroups`. */
  grid?: LaunchGrid;
  /** This launch's workgroup size, when it differs from the declaration's. */
  workgroupSize?: WorkgroupSize;
  /** Template values of this launch; a function is called only when a keyed variant is first seen. */
  defines?: Defines | (() => Defines);
  /**
   * Names this launch's variant: a string that (with `name` and the workgroup size) fixes `defines`
   * and which optional bindings are given. Launches with the same key reuse one compiled-kernel
   * handle, so the runtime skips building its cache key from the defines (a hot op's host cost).
   */
  key?: string;
  /** Names this launch in profiles and errors (the elementwise kernel: the op), instead of the kernel's name. */
  name?: string;
  /** Work of the launch, for the profiler's GFLOP/s and GB/s. */
  flops?: number;
  bytes?: number;
}

interface Field {
  name: string;
  type: UniformType;
  scalar: ScalarType;
  lanes: number;
  /** False for arrays, which take at most `lanes` numbers. */
  fixed: boolean;
  offset: number;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names the generated code itself declares. */
const RESERVED = new Set(['u', 'Uniforms', 'WG', 'WG_X', 'WG_Y', 'WG_Z']);
/** The most invocations a workgroup may hold on every WebGPU device (maxComputeInvocationsPerWorkgroup). */
const MAX_WORKGROUP_INVOCATIONS = 256;

/** A workgroup size as x, y, z, checked: positive integers, at most 256 invocations. */
function workgroupDims(kernel: string, size: WorkgroupSize): [number, number, number] {
  const [x, y = 1, z = 1] = typeof size === 'number' ? [size] : size;
  if (![x, y, z].every((d) => Number.isInteger(d) && d >= 1) || x * y * z > MAX_WORKGROUP_INVOCATIONS) {
    throw new Error(`kernel '${kernel}': workgroup size ${[x, y, z].join('x')} must be positive integers of at most ${MAX_WORKGROUP_INVOCATIONS} invocations`);
  }
  return [x, y, z];
}

/** Scalar type and lane count of a type; `array` (uniforms) allows arrays of vec4. */
function parseType(kernel: string, what: string, type: string, array = false): { scalar: ScalarType; lanes: number; fixed: boolean } {
  const arr = array ? /^array<vec4<(u32|i32|f32)>, ?([1-9][0-9]*)>$/.exec(type) : null;
  if (arr) return { scalar: arr[1] as ScalarType, lanes: 4 * Number(arr[2]), fixed: false };
  const m = /^(?:vec([24])<(u32|i32|f32)>|(u32|i32|f32))$/.exec(type);
  if (!m) {
    const arrays = array ? ', vec2<..> or vec4<..> of them, or array<vec4<..>, N>' : ', vec2<..> or vec4<..> of them';
    throw new Error(`kernel '${kernel}': ${what} has type '${type}'; expected u32, i32, f32${arrays}`);
  }
  return m[3] ? { scalar: m[3] as ScalarType, lanes: 1, fixed: true } : { scalar: m[2] as ScalarType, lanes: Number(m[1]), fixed: true };
}

/**
 * WGSL's uniform layout of the fields in order: each at the next multiple of its alignment (4 bytes
 * for a scalar, 8 for vec2, 16 for vec4 and arrays), the struct's size rounded up to 16 bytes.
 */
export function uniformLayout(kernel: string, fields: UniformFields): { fields: Field[]; size: number } {
  const out: Field[] = [];
  let offset = 0;
  for (const [name, type] of Object.entries(fields)) {
    if (!IDENT.test(name) || RESERVED.has(name)) throw new Error(`kernel '${kernel}': '${name}' cannot name a uniform field`);
    const { scalar, lanes, fixed } = parseType(kernel, `uniform '${name}'`, type, true);
    const align = lanes === 1 ? 4 : Math.min(lanes, 4) * 4;
    offset = Math.ceil(offset / align) * align;
    out.push({ name, type, scalar, lanes, fixed, offset });
    offset += lanes * 4;
  }
  return { fields: out, size: Math.ceil(offset / 16) * 16 };
}

const RANGE: Record<ScalarType, [number, number]> = { u32: [0, 2 ** 32 - 1], i32: [-(2 ** 31), 2 ** 31 - 1], f32: [-Infinity, Infinity] };

/** The uniform block being packed, seen as each scalar type. */
interface Block {
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
}

function newBlock(bytes: number): Block {
  const words = new ArrayBuffer(bytes);
  return { u32: new Uint32Array(words), i32: new Int32Array(words), f32: new Float32Array(words) };
}

/**
 * What one declaration reuses across its launches on one device (Runtime.scratchFor), so that a hot
 * op allocates nothing per launch: the uniform block, the buffer lists by count of tensors given, the
 * dispatch arguments. Each launch rewrites them; the buffer lists are emptied when it ends, thrown or
 * not, so they keep no buffer alive.
 */
interface LaunchScratch {
  block: Block;
  inputBuffers: (GPUBuffer | undefined)[][];
  outputBuffers: (GPUBuffer | undefined)[][];
  dispatch: DispatchArgs;
  /** The workgroups of a launch by `grid`. */
  grid: [number, number];
}

function writeScalar(kernel: string, f: Field, block: Block, word: number, v: number | boolean): void {
  const x = typeof v === 'boolean' ? Number(v) : v;
  if (f.scalar === 'f32') {
    if (typeof x !== 'number') throw new Error(`kernel '${kernel}': uniform '${f.name}' (${f.type}) cannot hold ${String(v)}`);
    block.f32[word] = x;
    return;
  }
  const [lo, hi] = RANGE[f.scalar];
  if (!(Number.isInteger(x) && x >= lo && x <= hi)) throw new Error(`kernel '${kernel}': uniform '${f.name}' (${f.type}) cannot hold ${String(v)}`);
  if (f.scalar === 'u32') block.u32[word] = x;
  else block.i32[word] = x;
}

/**
 * Packs a whole block at once, or returns false at the first value it cannot write (the caller then
 * packs again through the checking path, which names the field and the value).
 */
type Packer = (values: object, u32: Uint32Array, i32: Int32Array, f32: Float32Array) => boolean;

/**
 * The packer of one kernel's fields: JavaScript source generated from the declaration and compiled
 * with `new Function`, once per declaration. For `{ n: 'u32', scale: 'f32', shape: 'array<vec4<u32>, 2>' }`
 * it is, in effect:
 *
 *     count the keys of g; return false unless there are 3
 *     v = g.n;     (booleans become 0/1) if ((v >>> 0) !== v) return false; u32[0] = v;
 *     v = g.scale; if (typeof v !== 'number') return false; f32[1] = v;
 *     a = g.shape; return false unless an array of at most 8; store each as u32[4 + i]; zero the rest
 *     return true;
 *
 * Why generated: a training step launches dozens of kernels, each with its own uniform object. A
 * loop reading `values[field.name]` for all of them sees so many object layouts that every read
 * takes the JavaScript engine's slowest lookup, where each generated read (`g.scale`) sees one
 * layout and stays fast. Words of padding are never written, so they keep the zeros the block was
 * made with (a block is only ever packed for its own declaration).
 *
 * Fallbacks: a value the packer cannot store (a wrong type, out of range, missing or extra) makes it
 * return false, and packChecked packs again field by field to throw an error naming the field and
 * the value. Where code generation is forbidden (a page whose Content-Security-Policy disallows
 * eval) this returns null and every launch packs through packChecked.
 */
function compilePacker(fields: Field[]): Packer | null {
  const store = (scalar: ScalarType, word: string): string =>
    scalar === 'u32'
      ? `if ((v >>> 0) !== v) return false; u32[${word}] = v;`
      : scalar === 'i32'
        ? `if ((v | 0) !== v) return false; i32[${word}] = v;`
        : `if (typeof v !== 'number') return false; f32[${word}] = v;`;
  const lines = [`let count = 0; for (const _ in g) count++; if (count !== ${fields.length}) return false;`, 'let v, a;'];
  for (const f of fields) {
    const w = f.offset >> 2;
    if (f.lanes === 1) {
      lines.push(`v = g.${f.name}; if (typeof v === 'boolean') v = +v; ${store(f.scalar, `${w}`)}`);
      continue;
    }
    lines.push(
      `a = g.${f.name}; if (typeof a !== 'object' || a === null || a.length ${f.fixed ? '!==' : '>'} ${f.lanes}) return false;`,
      `for (let i = 0; i < a.length; i++) { v = a[i]; if (typeof v === 'boolean') v = +v; ${store(f.scalar, `${w} + i`)} }`,
    );
    if (!f.fixed) lines.push(`for (let i = a.length; i < ${f.lanes}; i++) u32[${w} + i] = 0;`);
  }
  lines.push('return true;');
  try {
    return new Function('g', 'u32', 'i32', 'f32', lines.join('\n')) as Packer;
  } catch (e) {
    if (e instanceof EvalError) return null;
    throw e;
  }
}

/** A storage binding as a launch checks it. */
interface BindingInfo {
  name: string;
  scalar: ScalarType;
  strided: boolean;
  optional: boolean;
  /** Word of its generated `off_<name>` uniform, or -1 when the kernel reads no offset for it. */
  offsetWord: number;
  /** Lanes of its element type when it is a literal vec2/vec4 (its offset must be a multiple), else 1. */
  lanes: number;
}

/** A declared kernel (see defineKernel): its generated WGSL, uniform packing, launch grid and launch. */
export class KernelDef<U extends UniformFields = UniformFields> {
  readonly name: string;
  /** The kernel's WGSL with the generated declarations prepended and its includes resolved. */
  readonly source: string;
  /** The size of a launch that sets none. */
  readonly workgroupSize: readonly [number, number, number];
  /** Uniform block bytes. */
  readonly uniformBytes: number;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The declared uniform fields (what a launch passes), first in the block. */
  private readonly fields: Field[];
  /** Word of the generated `row_width` uniform, or -1. */
  private readonly rowWidthWord: number;
  private readonly bindings: BindingInfo[];
  private readonly hasOptional: boolean;
  /** What the runtime compiles (and caches) when a launch adds no template values. */
  private readonly kernel: Kernel;
  private readonly packer: Packer | null;
  /**
   * Compiled-kernel handles of keyed launches (LaunchArgs.key), by launch name, workgroup size (when
   * the launch sets one) and key: immutable, so shared by every device.
   */
  private readonly variants = new Map<string | undefined, Map<string, Kernel>>();
  /** Makes this declaration's scratch on a device that has not launched it yet. */
  private readonly newScratch: () => LaunchScratch;

  constructor(spec: KernelSpec<U>) {
    const k = spec.name;
    const [x, y, z] = workgroupDims(k, spec.workgroupSize);
    const names = [...Object.keys(spec.inputs), ...Object.keys(spec.outputs)];
    for (const n of names) {
      if (!IDENT.test(n) || RESERVED.has(n) || names.indexOf(n) !== names.lastIndexOf(n)) {
        throw new Error(`kernel '${k}': '${n}' cannot name a binding (an identifier used once, not u or WG*)`);
      }
    }
    const body = resolveIncludes(spec.source, { ...SNIPPETS, ...spec.snippets });
    const generated = generatedUniforms(k, body, spec.uniforms, names);
    const { fields, size } = uniformLayout(k, { ...spec.uniforms, ...generated });
    if (size > UNIFORM_SLOT) throw new Error(`kernel '${k}': uniform block of ${size} bytes exceeds ${UNIFORM_SLOT}`);
    const declared = Object.keys(spec.uniforms).length;
    const wordOf = (name: string) => {
      const f = fields.find((g, i) => i >= declared && g.name === name);
      return f ? f.offset >> 2 : -1;
    };
    this.name = k;
    this.fields = fields.slice(0, declared);
    this.rowWidthWord = wordOf('row_width');
    this.uniformBytes = size;
    this.packer = compilePacker(this.fields);
    this.workgroupSize = [x, y, z];
    this.inputNames = Object.keys(spec.inputs);
    this.outputNames = Object.keys(spec.outputs);
    for (const n of spec.strided ?? []) {
      if (!names.includes(n)) throw new Error(`kernel '${k}': strided binding '${n}' is not among its bindings (${names.join(', ')})`);
    }
    this.bindings = Object.entries({ ...spec.inputs, ...spec.outputs }).map(([name, b]) => {
      const type = typeof b === 'string' ? b : b.type;
      const literal = /^vec([24])</.exec(type);
      return {
        name,
        scalar: typeof b === 'string' ? parseType(k, `binding '${name}'`, b).scalar : parseType(k, `binding '${name}' dtype`, b.dtype).scalar,
        strided: !!spec.strided?.includes(name),
        optional: typeof b !== 'string' && !!b.optional,
        offsetWord: wordOf(`off_${name}`),
        lanes: literal ? Number(literal[1]) : 1,
      };
    });
    this.hasOptional = this.bindings.some((b) => b.optional);
    const header = kernelHeader({ ...spec.uniforms, ...generated }, spec.inputs, spec.outputs);
    this.source = `${header}\n${body}`;
    this.kernel = { name: k, source: this.source, defines: { ...spec.defines, ...wgDefines(this.workgroupSize) } };
    this.newScratch = () => {
      const block = newBlock(size);
      const dispatch: DispatchArgs = { kernel: this.kernel, inputs: [], outputs: [], uniforms: block.u32, workgroups: [1], flops: undefined, bytes: undefined };
      return { block, inputBuffers: [], outputBuffers: [], dispatch, grid: [0, 0] };
    };
  }

  /** The uniform values as the bytes of the block. Throws on a missing, extra or unrepresentable value. */
  pack(values: UniformValues<U>): Uint8Array {
    return new Uint8Array(this.packWords(values, newBlock(this.uniformBytes)).buffer);
  }

  /**
   * pack() as 32-bit words into `block`, the form the runtime copies into its uniform ring fastest
   * (a launch packs into its device's scratch block, which dispatch copies at once).
   */
  private packWords(values: UniformValues<U>, block: Block): Uint32Array {
    if (this.packer?.(values, block.u32, block.i32, block.f32)) return block.u32;
    return this.packChecked(values, block);
  }

  /** packWords field by field, throwing at a missing, extra or unrepresentable value. */
  private packChecked(values: UniformValues<U>, block: Block): Uint32Array {
    const k = this.name;
    const given = values as Record<string, number | boolean | readonly number[] | undefined>;
    let count = 0;
    for (const _ in given) count++;
    if (count !== this.fields.length) this.throwFieldMismatch(Object.keys(given));
    block.u32.fill(0);
    for (const f of this.fields) {
      const v = given[f.name];
      if (v === undefined) this.throwFieldMismatch(Object.keys(given));
      const word = f.offset >> 2;
      if (f.lanes === 1) {
        if (typeof v === 'object') throw new Error(`kernel '${k}': uniform '${f.name}' (${f.type}) takes a number, got [${v.join(', ')}]`);
        writeScalar(k, f, block, word, v);
      } else {
        if (typeof v !== 'object' || (f.fixed ? v.length !== f.lanes : v.length > f.lanes)) {
          const count = f.fixed ? `${f.lanes}` : `at most ${f.lanes}`;
          throw new Error(`kernel '${k}': uniform '${f.name}' (${f.type}) takes ${count} numbers, got ${String(v)}`);
        }
        for (let i = 0; i < v.length; i++) writeScalar(k, f, block, word + i, v[i]);
      }
    }
    return block.u32;
  }

  private throwFieldMismatch(given: string[]): never {
    const extra = given.filter((n) => !this.fields.some((f) => f.name === n));
    const missing = this.fields.filter((f) => !given.includes(f.name)).map((f) => f.name);
    const generated = extra.filter((n) => n === 'row_width' || (n.startsWith('off_') && this.bindings.some((b) => `off_${b.name}` === n)));
    const parts = [
      missing.length ? `missing ${missing.join(', ')}` : '',
      extra.length ? `not declared: ${extra.join(', ')}` : '',
      generated.length ? `${generated.join(', ')} ${generated.length > 1 ? 'are' : 'is'} filled by the launch (from the tensors, or the grid)` : '',
    ];
    throw new Error(`kernel '${this.name}': uniforms ${parts.filter(Boolean).join('; ')} (declared: ${this.fields.map((f) => f.name).join(', ') || 'none'})`);
  }

  /**
   * A 1-D launch of `count` invocations (or, with `each` 'workgroup', of `count` workgroups) split over
   * a 2-D grid at the declared workgroup size: the workgroups to dispatch and the row width that the
   * "grid" snippet's flat_index needs. A launch by `grid` does this itself; this is for a kernel that
   * declares its own `row_width`.
   */
  grid(count: number, each: 'invocation' | 'workgroup' = 'invocation'): { workgroups: [number, number]; rowWidth: number } {
    const workgroups: [number, number] = [0, 0];
    return { workgroups, rowWidth: this.gridInto(count, workgroups, each) };
  }

  /** grid() written into `workgroups`, returning the row width: a hot launch path keeps one array for it. */
  gridInto(count: number, workgroups: [number, number], each: 'invocation' | 'workgroup' = 'invocation', per = this.workgroupSize[0] * this.workgroupSize[1] * this.workgroupSize[2]): number {
    const perGroup = each === 'workgroup';
    // grid1d's split, without the array it returns.
    const groups = perGroup ? count : Math.ceil(count / per);
    const gy = gridRows(groups);
    const gx = Math.ceil(groups / gy);
    workgroups[0] = gx;
    workgroups[1] = gy;
    return perGroup ? gx : gx * per;
  }

  /**
   * Check the tensors and uniforms, then queue the dispatch. Nothing is acquired but this device's
   * scratch (the uniform block, the buffer lists, the dispatch arguments, all rewritten by every
   * launch): the buffer lists are emptied in `finally`, so a launch that throws (a bad tensor or
   * uniform, a grid past the device's limit) leaves nothing behind and the next launch runs as usual.
   */
  launch(a: LaunchArgs<U>): void {
    const k = this.name;
    if (a.inputs.length !== this.inputNames.length) this.throwCount('inputs', this.inputNames, a.inputs.length);
    if (a.outputs.length !== this.outputNames.length) this.throwCount('outputs', this.outputNames, a.outputs.length);
    let first: Tensor | null | undefined = null;
    for (let i = 0; i < a.inputs.length && !first; i++) first = a.inputs[i];
    for (let i = 0; i < a.outputs.length && !first; i++) first = a.outputs[i];
    const engine = first?.engine;
    if (!engine) throw new Error(`kernel '${k}': a launch needs at least one tensor (the engine to run on)`);
    const scratch = engine.backend.scratchFor(this, this.newScratch);
    const nIn = a.inputs.length;
    let given = 0;
    for (let i = 0; i < nIn; i++) if (a.inputs[i]) given++;
    const inputs = (scratch.inputBuffers[given] ??= new Array<GPUBuffer | undefined>(given));
    given = 0;
    for (let i = 0; i < a.outputs.length; i++) if (a.outputs[i]) given++;
    const outputs = (scratch.outputBuffers[given] ??= new Array<GPUBuffer | undefined>(given));
    try {
      // Pack first: the checked path zeroes the block, and the generated words are written after it.
      const block = scratch.block;
      const words = this.packWords(a.uniforms, block);
      let nInputs = 0;
      let nOutputs = 0;
      for (let i = 0; i < this.bindings.length; i++) {
        const t = i < nIn ? a.inputs[i] : a.outputs[i - nIn];
        const b = this.bindings[i];
        if (!t) {
          if (!b.optional) throw new Error(`kernel '${k}': binding '${b.name}' needs a tensor`);
          if (b.offsetWord >= 0) words[b.offsetWord] = 0;
          continue;
        }
        if (t.disposed) t.assertAlive(`kernel '${k}' (binding '${b.name}')`);
        if (t.engine !== engine) throw new Error(`kernel '${k}': binding '${b.name}' ${t} lives on another device than ${first}`);
        if (b.scalar !== 'u32' && t.dtype !== b.scalar) throw new Error(`kernel '${k}': binding '${b.name}' takes ${b.scalar} data, got ${t}`);
        if (!b.strided && !t.isContiguous()) throw new Error(`kernel '${k}': binding '${b.name}' needs a contiguous tensor (copy it first), got ${t}`);
        if (b.offsetWord >= 0) {
          if (t.offset % b.lanes !== 0) throw new Error(`kernel '${k}': binding '${b.name}' reads vec${b.lanes}s, so its offset must be a multiple of ${b.lanes}; got ${t} at offset ${t.offset}`);
          words[b.offsetWord] = t.offset;
        } else if (t.offset !== 0 && !b.strided) {
          // The kernel indexes this binding from its buffer's start: a view further in would be read wrong.
          throw new Error(`kernel '${k}': binding '${b.name}' is read from its buffer's start (the kernel reads no u.off_${b.name}), got ${t} at offset ${t.offset}; copy it first`);
        }
        if (i < nIn) inputs[nInputs++] = t.buffer;
        else outputs[nOutputs++] = t.buffer;
      }
      const d = scratch.dispatch;
      const wg = a.workgroupSize === undefined ? this.workgroupSize : workgroupDims(k, a.workgroupSize);
      d.kernel = this.variant(a, wg);
      // Every slot is filled above: the lists are as long as the tensors given.
      d.inputs = inputs as GPUBuffer[];
      d.outputs = outputs as GPUBuffer[];
      d.uniforms = words;
      d.workgroups = this.workgroupsOf(a, wg, scratch.grid, words);
      d.flops = a.flops;
      d.bytes = a.bytes;
      engine.backend.dispatch(d);
    } finally {
      inputs.fill(undefined);
      outputs.fill(undefined);
    }
  }

  /** The launch's workgroup counts: given, or split from its grid (filling the generated row_width). */
  private workgroupsOf(a: LaunchArgs<U>, wg: readonly [number, number, number], grid: [number, number], words: Uint32Array): readonly [number, number?, number?] {
    const g = a.grid;
    if (g === undefined) {
      if (a.workgroups === undefined) throw new Error(`kernel '${this.name}': a launch gives workgroups or a grid`);
      // Only a launch by grid has a row width; a kernel whose live code reads it launches by grid.
      if (this.rowWidthWord >= 0) words[this.rowWidthWord] = 0;
      return a.workgroups;
    }
    if (a.workgroups !== undefined) throw new Error(`kernel '${this.name}': a launch gives workgroups or a grid, not both`);
    const perGroup = g.workgroups !== undefined;
    const count = perGroup ? g.workgroups : g.invocations;
    if (!(Number.isInteger(count) && count >= 0)) throw new Error(`kernel '${this.name}': grid of ${String(count)} ${perGroup ? 'workgroups' : 'invocations'}; expected a count`);
    const rowWidth = this.gridInto(count, grid, perGroup ? 'workgroup' : 'invocation', wg[0] * wg[1] * wg[2]);
    if (this.rowWidthWord >= 0) words[this.rowWidthWord] = rowWidth;
    return grid;
  }

  /**
   * The compiled-kernel handle of a launch: this.kernel, or the launch's variant (cached by
   * LaunchArgs.key, under the launch's workgroup size when it sets one).
   */
  private variant(a: LaunchArgs<U>, wg: readonly [number, number, number]): Kernel {
    const own = wg === this.workgroupSize || (wg[0] === this.workgroupSize[0] && wg[1] === this.workgroupSize[1] && wg[2] === this.workgroupSize[2]);
    const key = a.key === undefined ? undefined : own ? a.key : `${a.key}@${wg[0]}x${wg[1]}x${wg[2]}`;
    let byKey = this.variants.get(a.name);
    let kernel = key === undefined ? undefined : byKey?.get(key);
    if (kernel) return kernel;
    const defines = typeof a.defines === 'function' ? a.defines() : a.defines;
    kernel =
      defines || this.hasOptional || a.name || !own
        ? { name: a.name ?? this.name, source: this.source, defines: { ...this.kernel.defines, ...defines, ...this.bindingDefines(a), ...(own ? undefined : wgDefines(wg)) } }
        : this.kernel;
    if (key !== undefined) {
      if (!byKey) this.variants.set(a.name, (byKey = new Map()));
      byKey.set(key, kernel);
    }
    return kernel;
  }

  private throwCount(what: string, names: readonly string[], got: number): never {
    throw new Error(`kernel '${this.name}': expects ${names.length} ${what} (${names.join(', ')}), got ${got}`);
  }

  /** HAS_<NAME> of each optional binding and B_<NAME> (the slot) of every binding from the first optional one on. */
  private bindingDefines(a: LaunchArgs<U>): Defines {
    if (!this.hasOptional) return {};
    const d: Defines = {};
    let slot = 1;
    const nIn = a.inputs.length;
    for (let i = 0; i < this.bindings.length; i++) {
      const b = this.bindings[i];
      const given = !!(i < nIn ? a.inputs[i] : a.outputs[i - nIn]);
      if (b.optional) d[hasFlag(b.name)] = given;
      d[slotFlag(b.name)] = given ? slot++ : 0;
    }
    return d;
  }
}

/** Declare a kernel (see KernelSpec). Declare at module level: the declaration is checked and its WGSL built once. */
export function defineKernel<U extends UniformFields>(spec: KernelSpec<U>): KernelDef<U> {
  return new KernelDef(spec);
}

/** The template value holding binding `name`'s slot once an optional binding has come before it. */
function slotFlag(name: string): string {
  return `B_${name.toUpperCase()}`;
}

/** The generated WGSL uniform struct (without it when there are no fields). */
export function uniformStruct(fields: UniformFields): string {
  const entries = Object.entries(fields);
  if (!entries.length) return '';
  return `struct Uniforms {\n${entries.map(([n, t]) => `  ${n}: ${t},\n`).join('')}}\n`;
}

/**
 * Everything generated ahead of a kernel's source: the uniform struct and block, the bindings, the
 * workgroup size constants (template values WG_X, WG_Y, WG_Z that each variant fills). Once an
 * optional binding has come, slots are template values (B_<NAME>) that the launch fills in.
 */
export function kernelHeader(uniforms: UniformFields, inputs: Bindings, outputs: Bindings): string {
  const lines: string[] = ['// Generated from the kernel declaration (engine/kernel.ts).'];
  const struct = uniformStruct(uniforms);
  if (struct) lines.push(struct + '@group(0) @binding(0) var<uniform> u: Uniforms;');
  let binding = 1;
  let templated = false;
  const declare = (bindings: Bindings, access: string) => {
    for (const [name, b] of Object.entries(bindings)) {
      const type = typeof b === 'string' ? b : b.type;
      const optional = typeof b !== 'string' && !!b.optional;
      templated ||= optional;
      const slot = templated ? `\${${slotFlag(name)}}` : `${binding}`;
      binding++;
      const decl = `@group(0) @binding(${slot}) var<storage, ${access}> ${name}: array<${type}>;`;
      lines.push(...(optional ? [`#if \${${hasFlag(name)}}`, decl, '#endif'] : [decl]));
    }
  };
  declare(inputs, 'read');
  declare(outputs, 'read_write');
  lines.push('const WG_X = ${WG_X}u;', 'const WG_Y = ${WG_Y}u;', 'const WG_Z = ${WG_Z}u;', 'const WG = WG_X * WG_Y * WG_Z;');
  return lines.join('\n') + '\n';
}

/** The template values of a workgroup size, which the generated WG_* constants read. */
function wgDefines(wg: readonly [number, number, number]): Defines {
  return { WG_X: wg[0], WG_Y: wg[1], WG_Z: wg[2] };
}

/**
 * The uniforms the API generates for a kernel whose source (includes resolved) reads them and whose
 * declaration does not list them: `row_width` (filled from a launch's grid) and `off_<binding>`
 * (filled from the binding's tensor). `off_<name>` is the API's for every binding: declaring it is an
 * error. (The scan sees every `#if` branch, so a variant may read a field that another leaves unused.)
 */
function generatedUniforms(kernel: string, body: string, declared: UniformFields, bindings: readonly string[]): UniformFields {
  const out: UniformFields = {};
  if (/\bu\.row_width\b/.test(body) && !Object.hasOwn(declared, 'row_width')) out.row_width = 'u32';
  for (const name of Object.keys(declared)) {
    if (name.startsWith('off_') && bindings.includes(name.slice(4))) {
      throw new Error(`kernel '${kernel}': uniform '${name}' is generated from binding '${name.slice(4)}' (its tensor's offset); remove it from the uniforms`);
    }
  }
  for (const name of bindings) if (new RegExp(`\\bu\\.off_${name}\\b`).test(body)) out[`off_${name}`] = 'u32';
  return out;
}
