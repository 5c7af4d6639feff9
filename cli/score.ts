// `hvp score`: HVP's scoring and selection on embeddings stored in a file, with no model: every
// candidate combination of views is scored per sample (the method's per-sample loss, fused on the GPU)
// and the hardest (or easiest) one is reported.

import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine, Rng, fmt, io, type Tensor } from '../engine/index.js';
import {
  dinoCombinations,
  drawLimit,
  limitCombinations,
  pairCombinations,
  readSelection,
  scoreDino,
  scoreSimClr,
  scoreSimSiam,
  selectCombination,
  SELECT_MODES,
  type Combination,
  type SelectMode,
} from '../hvp/select/index.js';

export const SCORE_HELP = `Usage: hvp score --method METHOD --in E.safetensors --out S.json [options]

Scores every candidate view combination of every sample (the method's per-sample loss restricted to
that combination) and selects one per sample. Views are stacked view-major: tensors are [V, B, ...].

  --method M              simsiam | simclr | dino
  --in FILE               safetensors with float32 tensors:
                            simsiam  'p' and 'z' [V, B, D] (predictor and projector outputs)
                            simclr   'z' [V, B, D] (projector outputs)
                            dino     'student' [G+L, B, K], 'teacher' [G, B, K] logits, 'center' [K]
  --out FILE              JSON: {"selected": [view indices per sample], "score": [...], "combinations": C}
  --select MODE           hardest (default) | easiest | random
  --limit K               score only K combinations drawn at random (0 = all, the default)
  --seed N                seed of the limit and random draws (default 0)
  --anchor                simsiam/simclr: keep view 0 and choose its partner only
  --temperature T         simclr: τ (default 0.1)
  --teacher-temp T        dino: teacher temperature (default 0.04)
  --student-temp T        dino: student temperature (default 0.1)
  --global-views G        dino: global views, even (default 2)
  --local-crops-number n  dino: locals per combination (default all L)`;

type Tensors = Map<string, io.LoadedTensor>;

function num(name: string, v: string | undefined, opts: { int?: boolean; min?: number; positive?: boolean } = {}): number {
  const n = Number(v);
  const ok = v !== undefined && v.trim() !== '' && Number.isFinite(n) && (!opts.int || Number.isInteger(n)) && n >= (opts.min ?? -Infinity) && (!opts.positive || n > 0);
  if (!ok) throw new Error(`--${name} must be ${opts.positive ? 'a positive number' : `an integer ≥ ${opts.min ?? 0}`}, got '${v}'`);
  return n;
}

/** A float32 tensor of the file with `rank` axes, or an error naming the file, tensor and shape expected. */
function need(file: string, tensors: Tensors, name: string, shape: string, rank: number): io.LoadedTensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`${file}: no tensor named '${name}' (expected float32 ${shape}; found ${[...tensors.keys()].join(', ') || 'none'})`);
  if (t.dtype !== 'F32' || t.shape.length !== rank) {
    throw new Error(`${file}: '${name}' must be float32 ${shape}, got ${t.stored} ${fmt(t.shape)}`);
  }
  return t;
}

interface Plan {
  combos: Combination[];
  score: (engine: Engine, rows: Combination[]) => Tensor;
}

function upload(engine: Engine, t: io.LoadedTensor, shape = t.shape): Tensor {
  return engine.tensor(t.data, shape);
}

function pairPlan(method: 'simsiam' | 'simclr', file: string, tensors: Tensors, v: Record<string, string | boolean | undefined>): Plan {
  const z = need(file, tensors, 'z', '[V, B, D]', 3);
  const p = method === 'simsiam' ? need(file, tensors, 'p', '[V, B, D]', 3) : null;
  if (p && fmt(p.shape) !== fmt(z.shape)) throw new Error(`${file}: 'p' ${fmt(p.shape)} and 'z' ${fmt(z.shape)} must have the same shape [V, B, D]`);
  if (z.shape[0] < 2) throw new Error(`${file}: 'z' ${fmt(z.shape)} holds ${z.shape[0]} view; pairs need V ≥ 2`);
  const temperature = num('temperature', v.temperature as string, { positive: true });
  return {
    combos: pairCombinations(z.shape[0], { anchor: !!v.anchor }),
    score: (engine, rows) =>
      p ? scoreSimSiam(upload(engine, p), upload(engine, z), rows) : scoreSimClr(upload(engine, z), rows, temperature),
  };
}

function dinoPlan(file: string, tensors: Tensors, v: Record<string, string | boolean | undefined>): Plan {
  const s = need(file, tensors, 'student', '[G+L, B, K]', 3);
  const t = need(file, tensors, 'teacher', '[G, B, K]', 3);
  const c = tensors.get('center');
  const g = num('global-views', v['global-views'] as string, { int: true, min: 2 });
  if (g % 2 !== 0) throw new Error(`--global-views must be even (slot A takes the even globals, slot B the odd ones), got ${g}`);
  const [vs, b, k] = s.shape;
  if (fmt(t.shape) !== fmt([g, b, k])) {
    throw new Error(`${file}: 'teacher' ${fmt(t.shape)} must be [G, B, K] = ${fmt([g, b, k])} for --global-views ${g} and 'student' ${fmt(s.shape)}`);
  }
  if (!c || c.dtype !== 'F32' || c.data.length !== k) {
    throw new Error(`${file}: 'center' must be float32 [${k}] (the teacher centre), got ${c ? `${c.stored} ${fmt(c.shape)}` : 'none'}`);
  }
  const locals = vs - g;
  if (locals < 0) throw new Error(`${file}: 'student' ${fmt(s.shape)} has fewer views than the ${g} globals (--global-views)`);
  const n = v['local-crops-number'] === undefined ? locals : num('local-crops-number', v['local-crops-number'] as string, { int: true, min: 0 });
  if (n > locals) throw new Error(`--local-crops-number ${n} exceeds the ${locals} local views in 'student' ${fmt(s.shape)}; use at most ${locals}`);
  const temps = {
    teacherTemp: num('teacher-temp', v['teacher-temp'] as string, { positive: true }),
    studentTemp: num('student-temp', v['student-temp'] as string, { positive: true }),
  };
  return {
    combos: dinoCombinations(g, locals, n),
    score: (engine, rows) => scoreDino(upload(engine, s), upload(engine, t), upload(engine, c, [k]), temps, rows),
  };
}

export async function scoreMain(argv: string[], opts: { engine?: Engine } = {}): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      method: { type: 'string' },
      in: { type: 'string' },
      out: { type: 'string' },
      select: { type: 'string', default: 'hardest' },
      limit: { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      anchor: { type: 'boolean', default: false },
      temperature: { type: 'string', default: '0.1' },
      'teacher-temp': { type: 'string', default: '0.04' },
      'student-temp': { type: 'string', default: '0.1' },
      'global-views': { type: 'string', default: '2' },
      'local-crops-number': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return console.log(SCORE_HELP);
  for (const req of ['method', 'in', 'out'] as const) if (!v[req]) throw new Error(`--${req} is required (see hvp score --help)`);
  const method = v.method!;
  if (method !== 'simsiam' && method !== 'simclr' && method !== 'dino') throw new Error(`--method must be simsiam, simclr or dino, got '${method}'`);
  const mode = v.select as SelectMode;
  if (!SELECT_MODES.includes(mode)) throw new Error(`--select must be one of ${SELECT_MODES.join(', ')}, got '${v.select}'`);
  const limit = num('limit', v.limit, { int: true, min: 0 });
  const rng = new Rng(num('seed', v.seed, { int: true, min: 0 }));

  const file = v.in!;
  const { tensors } = io.readSafetensors(await readFile(file), { source: file });
  const plan = method === 'dino' ? dinoPlan(file, tensors, v) : pairPlan(method, file, tensors, v);
  const rows = limitCombinations(plan.combos, drawLimit(plan.combos.length, limit, rng));

  const engine = opts.engine ?? (await Engine.create());
  try {
    const sel = await engine.scopeAsync(async () => readSelection(selectCombination(plan.score(engine, rows), mode, rng)));
    const result = { selected: [...sel.choice].map((c) => rows[c]), score: [...sel.score], combinations: rows.length };
    await writeFile(v.out!, JSON.stringify(result) + '\n');
    console.log(`wrote ${v.out}: ${mode} of ${rows.length} combinations for ${sel.choice.length} samples`);
  } finally {
    if (!opts.engine) engine.destroy();
  }
}
