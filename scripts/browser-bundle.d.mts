// Types of browser-bundle.mjs for the tests and the server.
import type { Metafile } from 'esbuild';
export const EXPLORER_ENTRY: string;
export const EXPLORER_STATIC: string[];
export function buildExplorer(outdir?: string): Promise<Metafile>;
export function nodeOnlyInputs(metafile: Metafile): string[];
