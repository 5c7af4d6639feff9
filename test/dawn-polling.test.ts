import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { dawnPollingThrottled, IMMEDIATE_POLLS, isDawnPoll, throttledImmediate } from '../engine/dawn-polling.js';
import { SOFTWARE_ADAPTER } from '../engine/device.js';
import { ops, Rng } from '../engine/index.js';
import { engine } from './helpers.js';

// A native function without a name, as Dawn's poll is: Function.prototype is one.
const nativeAnonymous = Function.prototype as unknown as (...args: unknown[]) => void;

describe('Dawn polling throttle', () => {
  it("tells Dawn's poll (native, unnamed) from every other callback", () => {
    expect(isDawnPoll(nativeAnonymous)).toBe(true);
    expect(isDawnPoll(() => {})).toBe(false);
    expect(isDawnPoll(function named() {})).toBe(false);
    // Bound functions print as native code too, but carry a name.
    expect(isDawnPoll(function f() {}.bind(null))).toBe(false);
    expect(isDawnPoll(Math.max)).toBe(false);
    expect(isDawnPoll(undefined)).toBe(false);
  });

  it('runs a burst of polls at once, then one per timer tick, and starts over after a quiet spell', () => {
    const calls: string[] = [];
    let clock = 0;
    const wrapped = throttledImmediate(
      (fn, ...args) => calls.push(`immediate ${args.join(',')}`),
      (fn, ms, ...args) => calls.push(`timer ${ms} ${args.join(',')}`),
      () => clock,
    );
    // One wait: polls 0.01 ms apart, then 1 ms apart once they go to the timer.
    for (let i = 0; i < IMMEDIATE_POLLS + 3; i++) {
      wrapped(nativeAnonymous, i);
      clock += i < IMMEDIATE_POLLS ? 0.01 : 1;
    }
    expect(calls.slice(0, IMMEDIATE_POLLS)).toEqual(Array.from({ length: IMMEDIATE_POLLS }, (_, i) => `immediate ${i}`));
    expect(calls.slice(IMMEDIATE_POLLS)).toEqual([0, 1, 2].map((i) => `timer 0 ${IMMEDIATE_POLLS + i}`));
    // Other callbacks are never delayed, even in the middle of a wait.
    wrapped(() => {}, 'js');
    expect(calls.at(-1)).toBe('immediate js');
    // A new wait after a quiet second polls at once again.
    clock += 1000;
    wrapped(nativeAnonymous, 'next');
    expect(calls.at(-1)).toBe('immediate next');
  });

  it('is installed on CPU adapters only, and GPU work and util.promisify(setImmediate) still complete', async () => {
    const e = await engine();
    expect(dawnPollingThrottled()).toBe(SOFTWARE_ADAPTER.test(e.backend.description));
    const x = e.randn([1000], new Rng(3));
    const [before, after] = await e.scopeAsync(async () => {
      let h = x;
      for (let i = 0; i < 50; i++) h = ops.add(h, 1);
      return [await x.toArray(), await h.toArray()];
    });
    expect(Array.from(after, (v, i) => Math.abs(v - before[i] - 50) < 1e-4).every(Boolean)).toBe(true);
    x.dispose();
    await expect(promisify(setImmediate)('value')).resolves.toBe('value');
  });

  it("hands Dawn's real poll to the throttle while the GPU works", async (ctx) => {
    const e = await engine();
    if (!dawnPollingThrottled()) ctx.skip();
    // Record what reaches the installed wrapper during one wait for the GPU.
    const installed = globalThis.setImmediate;
    const seen: boolean[] = [];
    globalThis.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
      seen.push(isDawnPoll(fn));
      return installed(fn, ...args);
    }) as typeof setImmediate;
    try {
      const x = e.randn([4096], new Rng(4));
      e.scope(() => {
        let h = x;
        for (let i = 0; i < 20; i++) h = ops.mul(h, 1.5);
      });
      await e.sync();
      x.dispose();
    } finally {
      globalThis.setImmediate = installed;
    }
    expect(seen).toContain(true);
  });
});
