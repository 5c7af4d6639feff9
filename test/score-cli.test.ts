// `hvp score` end to end: small safetensors files written here, scoreMain called directly, its JSON
// compared with the float64 scores of test/select-ref.ts and a brute-force argmax; bad inputs fail
// with a message saying what to change.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { io, Rng } from '../engine/index.js';
import { dinoCombinations, pairCombinations } from '../hvp/select/index.js';
import { scoreMain } from '../cli/score.js';
import { engine, randNd } from './helpers.js';
import type { Nd } from './ref.js';
import { dinoScoresRef, simsiamScoresRef } from './select-ref.js';

const dir = mkdtempSync(join(tmpdir(), 'hvp-score-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, tensors: Record<string, Nd>): string {
  const path = join(dir, name);
  const entries = Object.fromEntries(
    Object.entries(tensors).map(([k, x]) => [k, { dtype: 'F32' as const, shape: x.shape, data: Float32Array.from(x.data) }]),
  );
  writeFileSync(path, io.writeSafetensors(entries));
  return path;
}

/** Per row of scores [B, C]: the first index of the max, and that max. */
function hardest(s: Nd): { choice: number[]; score: number[] } {
  const [b, c] = s.shape;
  const choice = Array.from({ length: b }, (_, i) => {
    let best = 0;
    for (let j = 1; j < c; j++) if (s.data[i * c + j] > s.data[i * c + best]) best = j;
    return best;
  });
  return { choice, score: choice.map((j, i) => s.data[i * c + j]) };
}

async function run(args: string[]): Promise<{ selected: number[][]; score: number[]; combinations: number }> {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}.json`);
  await scoreMain([...args, '--out', out], { engine: await engine() });
  return JSON.parse(readFileSync(out, 'utf8'));
}

describe('hvp score', () => {
  it('simsiam: the hardest pair per sample and its score', async () => {
    const rng = new Rng(21);
    const p = randNd([4, 6, 9], rng);
    const z = randNd([4, 6, 9], rng);
    const r = await run(['--method', 'simsiam', '--in', write('ss.safetensors', { p, z })]);
    const combos = pairCombinations(4);
    const ref = hardest(simsiamScoresRef(p, z, combos));
    expect(r.combinations).toBe(6);
    expect(r.selected).toEqual(ref.choice.map((c) => combos[c]));
    r.score.forEach((s, i) => expect(s).toBeCloseTo(ref.score[i], 5));
  });

  it('dino with 4 globals and 2 of 3 locals, --limit draws a subset of those combinations', async () => {
    const rng = new Rng(22);
    const [g, l, b, k] = [4, 3, 5, 16];
    const student = randNd([g + l, b, k], rng, { scale: 3 });
    const teacher = randNd([g, b, k], rng, { scale: 3 });
    const center = randNd([k], rng, { scale: 0.3 });
    const file = write('dino.safetensors', { student, teacher, center });
    const args = ['--method', 'dino', '--in', file, '--global-views', '4', '--local-crops-number', '2'];
    const r = await run(args);
    const combos = dinoCombinations(g, l, 2);
    const ref = hardest(dinoScoresRef(student, teacher, center, { teacherTemp: 0.04, studentTemp: 0.1 }, combos));
    expect(r.combinations).toBe(12);
    expect(r.selected).toEqual(ref.choice.map((c) => combos[c]));
    r.score.forEach((s, i) => expect(s).toBeCloseTo(ref.score[i], 3));

    const lim = await run([...args, '--limit', '5', '--seed', '3', '--select', 'easiest']);
    expect(lim.combinations).toBe(5);
    for (const row of lim.selected) expect(combos.map(String)).toContain(String(row));
  });

  it('refuses bad input, saying what to change', async () => {
    const rng = new Rng(23);
    const z = randNd([3, 2, 4], rng);
    const file = write('z.safetensors', { z });
    await expect(run(['--method', 'simsiam', '--in', file])).rejects.toThrow(/no tensor named 'p'/);
    const d = write('d.safetensors', { student: randNd([4, 2, 5], rng), teacher: randNd([2, 2, 5], rng), center: randNd([5], rng) });
    await expect(run(['--method', 'dino', '--in', d, '--local-crops-number', '3'])).rejects.toThrow(/--local-crops-number 3 exceeds the 2 local views/);
    await expect(run(['--method', 'dino', '--in', d, '--global-views', '3'])).rejects.toThrow(/--global-views must be even/);
    await expect(run(['--method', 'dino', '--in', d, '--global-views', '4'])).rejects.toThrow(/'teacher' \[2, 2, 5\] must be \[G, B, K\] = \[4, 2, 5\]/);
  });
});
