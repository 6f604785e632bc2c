#!/usr/bin/env node
// Entry point of the `strata` command. Strata needs Node 24 (node:sqlite,
// crypto.argon2, type stripping); npm scripts and `npx strata` get the Node
// pinned in package.json, so this check only fires when run by hand with an
// older system Node.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 12)) {
  process.stderr.write(
    `strata: needs Node >= 24.12, this is ${process.version}. ` +
      'Run it through npm so the pinned Node is used: `npx strata ...` (after `npm ci`).\n',
  );
  process.exit(1);
}
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});
// Server verbs run with a small young generation (cli/node-flags.ts: a start-up flag, so the process
// re-executes itself in place, same pid); STRATA_NODE_SEMI_SPACE_MB=0 leaves V8's default.
const args = process.argv.slice(2);
try {
  const { reexecFlags } = await import('../cli/node-flags.ts');
  const flags = reexecFlags({ args, execArgv: process.execArgv, env: process.env });
  if (flags && typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, process.argv[1], ...args], process.env);
  }
} catch (err) {
  process.stderr.write(`strata: ${err.message}\n`);
  process.exit(2);
}
const { main } = await import('../cli/main.ts');
process.exitCode = await main(args);
