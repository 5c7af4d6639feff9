// Entry of dist/bench.js (`npm run bench`).
import { benchMain } from './main.js';

benchMain(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
