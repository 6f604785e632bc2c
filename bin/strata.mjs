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
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
