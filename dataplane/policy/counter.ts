/**
 * Reading the policy table's drop counter from the kernel
 * (`nft -j list counter inet <table> drops`: one nft process, which reads
 * only the table's named objects, not its sets).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defaultNftPath } from '../l4lb/nft.ts';
import { DROPS_COUNTER } from './ruleset.ts';

const run = promisify(execFile);

/** Packets dropped by the table's policies since it was loaded whole. */
export type DropCounterReader = (table: string) => Promise<number>;

export function nftDropCounter(options: { readonly netns?: string; readonly nftPath?: string } = {}): DropCounterReader {
  return async (table) => {
    const nft = options.nftPath ?? defaultNftPath();
    const args = ['-j', 'list', 'counter', 'inet', table, DROPS_COUNTER];
    const { stdout } = options.netns === undefined ? await run(nft, args) : await run('ip', ['netns', 'exec', options.netns, nft, ...args]);
    const parsed = JSON.parse(stdout) as { nftables: { counter?: { packets: number } }[] };
    return parsed.nftables.find((o) => o.counter)?.counter?.packets ?? 0;
  };
}
