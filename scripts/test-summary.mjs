// Print vitest's JSON report as one plain line: "N passed, N failed[, N skipped]".
// Exits non-zero when the report is missing or no test ran.
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-report.json';
if (!existsSync(file)) {
  console.log('0 passed, 0 failed');
  console.error(`no test report at ${file}: the test run did not complete`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
if (r.numTotalTests === 0) process.exit(1);
