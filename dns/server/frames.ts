/**
 * RFC 1035 4.2.2 TCP framing: a 2-byte length, then the message. Chunks are
 * kept as they arrive and joined once per complete message, so a client
 * that drips a 64 KiB message a byte at a time costs one copy, not 64 Ki
 * growing ones.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #total = 0;

  /** Adds a chunk; returns the messages it completed (each its own memory), in order. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#total += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.#total < 2) return out;
      const length = this.#lengthPrefix();
      if (this.#total < 2 + length) return out;
      const joined = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#total);
      out.push(Buffer.from(joined.subarray(2, 2 + length)));
      const rest = joined.subarray(2 + length);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#total = rest.length;
    }
  }

  /** Bytes held that do not yet form a whole message. */
  get pendingBytes(): number {
    return this.#total;
  }

  #lengthPrefix(): number {
    const first = this.#chunks[0]!;
    if (first.length >= 2) return (first[0]! << 8) | first[1]!;
    return (first[0]! << 8) | this.#chunks[1]![0]!;
  }
}

/** `message` with its 2-byte length prefix. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}
