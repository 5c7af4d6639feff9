// Entry of dist/bench.js (`npm run bench`).
import { DEVICE_SETTINGS_HELP, setDeviceDefaults, takeDeviceSettings } from '../engine/index.js';
import { benchMain } from './main.js';

// The device settings (--device, --adapter, --kernels, or HVP_*) as `hvp bench` takes them.
const run = async (args: string[]) => {
  const { rest, settings } = takeDeviceSettings(args, process.env);
  setDeviceDefaults(settings);
  await benchMain(rest);
  if (rest.includes('--help') || rest.includes('-h')) console.log(`\n${DEVICE_SETTINGS_HELP}`);
};

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
