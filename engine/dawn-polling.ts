// Dawn's Node bindings learn that GPU work has finished (onSubmittedWorkDone, mapAsync, error scopes)
// by polling: while any such promise is pending, a native callback processes Dawn's events and
// schedules itself again with the global setImmediate, a busy loop on one core for as long as the
// wait lasts. On a GPU that costs a core nothing else needed. On a CPU adapter (lavapipe,
// SwiftShader) the device's own work runs on the same cores, and the spinning main thread takes
// one of them from it: on the project's 2-core machine the demo's training step ran at 1.6-1.7×
// the time it takes when the poll sleeps between checks.
//
// throttleDawnPolling wraps the global setImmediate so that Dawn's poll (an anonymous native
// function, the only kind of callback Dawn passes) runs a few times at once and then once per timer
// tick (setTimeout 0: about a millisecond, the thread asleep in between): a short wait (a small
// readback) still ends within the first few polls, a long one (a training step's work) costs at most
// a tick of latency. Every other callback goes to the original setImmediate untouched. Dawn looks the
// global up each time it schedules, so the wrapper takes effect whenever it is installed.

type Immediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => unknown;
type Timer = (fn: (...args: unknown[]) => void, ms: number, ...args: unknown[]) => unknown;

/** Polls that run at once after a quiet spell before the poll waits for timer ticks. */
export const IMMEDIATE_POLLS = 16;
/** A poll scheduled within this many ms of the last one continues the same wait. */
const SAME_WAIT_MS = 5;

const WRAPPED = Symbol.for('hvp.dawnPollingThrottle');

/** Dawn's poll: a native function without a name (a bound function is native too, but named "bound …"). */
export function isDawnPoll(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(fn));
}

/**
 * A setImmediate that passes everything to `immediate` except Dawn's poll, which after
 * IMMEDIATE_POLLS polls in a row goes to `timer` with a 0 ms delay. `now` is a clock in ms.
 */
export function throttledImmediate(immediate: Immediate, timer: Timer, now: () => number): Immediate {
  let last = -Infinity;
  let inARow = 0;
  const wrapper: Immediate = (fn, ...args) => {
    if (!isDawnPoll(fn)) return immediate(fn, ...args);
    const t = now();
    inARow = t - last <= SAME_WAIT_MS ? inARow + 1 : 1;
    last = t;
    return inARow <= IMMEDIATE_POLLS ? immediate(fn, ...args) : timer(fn, 0, ...args);
  };
  Object.defineProperty(wrapper, WRAPPED, { value: true });
  // util.promisify(setImmediate) reads this (Node's setImmediate takes no callback to promisify).
  const custom = Symbol.for('nodejs.util.promisify.custom');
  const promisified = (immediate as unknown as Record<symbol, unknown>)[custom];
  if (promisified) Object.defineProperty(wrapper, custom, { value: promisified });
  return wrapper;
}

/** Install the throttle on the global setImmediate (once; later calls do nothing). */
export function throttleDawnPolling(): void {
  const g = globalThis as unknown as { setImmediate?: Immediate & { [WRAPPED]?: boolean }; setTimeout: Timer };
  if (!g.setImmediate || g.setImmediate[WRAPPED]) return;
  g.setImmediate = throttledImmediate(g.setImmediate, g.setTimeout, () => performance.now());
}

/** Whether the throttle is installed. */
export function dawnPollingThrottled(): boolean {
  const g = globalThis as unknown as { setImmediate?: { [WRAPPED]?: boolean } };
  return !!g.setImmediate?.[WRAPPED];
}
