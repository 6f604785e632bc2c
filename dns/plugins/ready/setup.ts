import type { PluginSetup } from '../plugin.ts';
import { readyPlugin } from './ready.ts';

/** No options: `spartan` is a fixed zone. */
export const setup: PluginSetup = () => readyPlugin();
