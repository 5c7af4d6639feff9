// Types of browser-bundle.mjs for the tests and the server.
import type { Metafile } from 'esbuild';
export const EXPLORER_ENTRY: string;
export const EXPLORER_STATIC: string[];
export function buildExplorer(outdir?: string): Promise<Metafile>;
/** esbuild options of a browser bundle: ESM, text assets, Dawn stubbed. */
export function browserBundleOptions(): import('esbuild').BuildOptions & { metafile: true };
export function nodeOnlyInputs(metafile: Metafile): string[];
