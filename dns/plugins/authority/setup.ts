import type { PluginSetup } from '../plugin.ts';
import { authorityPlugin } from './authority.ts';

/** No options: the authority comes from the server's caller. */
export const setup: PluginSetup = (context) => authorityPlugin(context.authority);
