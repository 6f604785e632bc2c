import test from 'ava';
import fc from 'fast-check';
import { FrameReader, frame } from './frames.ts';

test('messages come out whole and in order however the stream is cut', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (messages, cuts) => {
        const stream = Buffer.concat(messages.map((m) => frame(Buffer.from(m))));
        const reader = new FrameReader();
        const out: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length]!;
          out.push(...reader.push(stream.subarray(at, at + size)));
          at += size;
        }
        return out.length === messages.length && out.every((m, i) => m.equals(Buffer.from(messages[i]!))) && reader.pendingBytes === 0;
      },
    ),
    { numRuns: 500 },
  );
  t.pass('property held');
});

test('a 64 KiB message dripped a byte at a time comes out whole, and nothing is held before it completes', (t) => {
  const message = Buffer.alloc(65535, 7);
  const stream = frame(message);
  const reader = new FrameReader();
  let out: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) {
    out = out.concat(reader.push(stream.subarray(i, i + 1)));
    if (i < stream.length - 1 && out.length > 0) return t.fail(`a message came out after ${i + 1} bytes`);
  }
  t.is(out.length, 1);
  t.true(out[0]!.equals(message));
  t.is(reader.pendingBytes, 0);
});
