import test from 'ava';
import { decodeWaitStatus, isSameLiveProcess, parseProcStat, readProcStat } from './proc.ts';

test('/proc/<pid>/stat: fields after a command name with spaces and parentheses', (t) => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = 'Z'; // field 3
  fields[49] = '2304'; // field 52: exit code
  const stat = parseProcStat(`4242 (we (ird) name) ${fields.join(' ')}\n`);
  t.like(stat, { pid: 4242, state: 'Z', ppid: 4, pgrp: 5, session: 6, startTime: '22', exitCode: 2304 });
  t.is(parseProcStat('garbage'), undefined);
});

test('this process: readable, the same live process by start time, not by a wrong one', (t) => {
  const self = readProcStat(process.pid)!;
  t.is(self.pid, process.pid);
  t.true(isSameLiveProcess(process.pid, self.startTime));
  t.false(isSameLiveProcess(process.pid, `${self.startTime}1`), 'a reused pid (other start time) is not the process');
  t.false(isSameLiveProcess(2 ** 22 + 1, '1'), 'no such pid');
});

test('wait statuses', (t) => {
  t.deepEqual(decodeWaitStatus(3 << 8), { exitCode: 3 });
  t.deepEqual(decodeWaitStatus(9), { signal: 9 });
});
