// Fails when the project's own TypeScript modules import each other in a
// cycle (grpc-js runs `madge -c` for the same reason; madge's peer range
// does not accept TypeScript 6, so this is a small dependency-free check).
// Type-only imports count too: a cycle of types is still a tangle.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const folders = ['common', 'control-plane', 'dataplane', 'dns', 'overlay', 'gateway', 'scheduler', 'security', 'cli', 'test', 'bench'];

function files(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(files(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const graph = new Map<string, string[]>();
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
for (const file of folders.flatMap((f) => files(join(root, f)))) {
  const text = readFileSync(file, 'utf8');
  const deps = [...text.matchAll(IMPORT)].map((m) => resolve(dirname(file), (m[1] ?? m[2])!));
  graph.set(file, deps.filter((d) => d.endsWith('.ts')));
}

const state = new Map<string, 'visiting' | 'done'>();
const cycles: string[][] = [];
function visit(node: string, stack: string[]): void {
  state.set(node, 'visiting');
  stack.push(node);
  for (const dep of graph.get(node) ?? []) {
    if (state.get(dep) === 'visiting') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
    else if (!state.has(dep)) visit(dep, stack);
  }
  stack.pop();
  state.set(node, 'done');
}
for (const node of graph.keys()) if (!state.has(node)) visit(node, []);

if (cycles.length > 0) {
  for (const c of cycles) console.error(`import cycle: ${c.map((f) => relative(root, f)).join(' -> ')}`);
  process.exit(1);
}
console.log(`no import cycles among ${graph.size} modules`);
