// The engine's shared WGSL snippets, by the name a shader includes them with (`#include "grid"`).
// WGSL has no include of its own; shader.ts pastes a snippet in place of the directive.

import grid from './grid.wgsl';
import nan from './nan.wgsl';

export const SNIPPETS: Readonly<Record<string, string>> = { grid, nan };
