import type { BenchCase } from "../case.js";
export const convCases: BenchCase[] = [];
