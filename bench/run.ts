// `npm run bench -- <area>`: runs one benchmark area and prints its JSON.
// Areas register here by name; each exports `run(args): Promise<unknown>`.
const AREAS: Record<string, () => Promise<{ run(args: string[]): Promise<unknown> }>> = {
  store: () => import('./store.ts'),
  scheduler: () => import('./scheduler.ts'),
  vip: () => import('./vip.ts'),
  security: () => import('./security.ts'),
  'agent-tasks': () => import('./agent-tasks.ts'),
  'dns-zone': () => import('./dns-zone.ts'),
  dns: () => import('./dns.ts'),
  xds: () => import('./xds.ts'),
  overlay: () => import('./overlay.ts'),
  secrets: () => import('./secrets.ts'),
  policy: () => import('./policy.ts'),
  idp: () => import('./idp.ts'),
  ui: () => import('./ui.ts'),
};

const [area, ...args] = process.argv.slice(2);
if (!area || !(area in AREAS)) {
  console.error(`usage: npm run bench -- <area> [options]\nareas: ${Object.keys(AREAS).join(', ')}`);
  process.exit(2);
}
const result = await (await AREAS[area]!()).run(args);
console.log(JSON.stringify(result, null, 2));
