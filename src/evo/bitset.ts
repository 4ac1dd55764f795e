/**
 * A fixed-length set of bits packed into 32-bit words: the binary genome.
 * Masks over a whole network run to ~10^5-10^6 bits, so operators work on whole
 * words where they can, and the bits past `length` in the last word are kept zero
 * (count() and equals() rely on it).
 */
import { ArgumentError } from '../core/errors.js';

export class BitSet {
  readonly length: number;
  /** Bit i lives in words[i >>> 5] at position i & 31. Exposed for word-level operators. */
  readonly words: Uint32Array;

  constructor(length: number, words?: Uint32Array) {
    if (!Number.isInteger(length) || length < 0) throw new ArgumentError(`BitSet: length must be a non-negative integer, got ${length}`);
    const nWords = (length + 31) >>> 5;
    if (words && words.length !== nWords) {
      throw new ArgumentError(`BitSet: ${length} bits need ${nWords} words, got ${words.length}`);
    }
    this.length = length;
    this.words = words ?? new Uint32Array(nWords);
  }

  static fromBits(bits: ArrayLike<number | boolean>): BitSet {
    const b = new BitSet(bits.length);
    for (let i = 0; i < bits.length; i++) if (bits[i]) b.words[i >>> 5] |= 1 << (i & 31);
    return b;
  }

  get(i: number): boolean {
    return ((this.words[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  set(i: number, value = true): void {
    this.checkIndex(i);
    if (value) this.words[i >>> 5] |= 1 << (i & 31);
    else this.words[i >>> 5] &= ~(1 << (i & 31));
  }

  flip(i: number): void {
    this.checkIndex(i);
    this.words[i >>> 5] ^= 1 << (i & 31);
  }

  /** Number of set bits (SWAR popcount per word). */
  count(): number {
    let c = 0;
    const w = this.words;
    for (let k = 0; k < w.length; k++) c += popcount32(w[k]);
    return c;
  }

  clone(): BitSet {
    return new BitSet(this.length, this.words.slice());
  }

  equals(other: BitSet): boolean {
    if (other.length !== this.length) return false;
    for (let k = 0; k < this.words.length; k++) if (this.words[k] !== other.words[k]) return false;
    return true;
  }

  /** Copies bits [from, to) of `src` into this set, a word at a time in the middle. */
  copyRangeFrom(src: BitSet, from: number, to: number): void {
    if (src.length !== this.length) throw new ArgumentError(`BitSet.copyRangeFrom: lengths differ (${src.length} vs ${this.length})`);
    if (!(0 <= from && from <= to && to <= this.length)) {
      throw new ArgumentError(`BitSet.copyRangeFrom: bad range [${from}, ${to}) for ${this.length} bits`);
    }
    if (from === to) return;
    const d = this.words, s = src.words;
    const w0 = from >>> 5, w1 = (to - 1) >>> 5;
    const m0 = (0xffffffff << (from & 31)) >>> 0;
    const m1 = 0xffffffff >>> (31 - ((to - 1) & 31));
    if (w0 === w1) {
      const m = m0 & m1;
      d[w0] = (d[w0] & ~m) | (s[w0] & m);
      return;
    }
    d[w0] = (d[w0] & ~m0) | (s[w0] & m0);
    for (let k = w0 + 1; k < w1; k++) d[k] = s[k];
    d[w1] = (d[w1] & ~m1) | (s[w1] & m1);
  }

  /** Indices of the set bits, ascending. */
  indices(): Int32Array {
    const out = new Int32Array(this.count());
    let j = 0;
    for (let k = 0; k < this.words.length; k++) {
      let w = this.words[k];
      while (w !== 0) {
        const t = w & -w;
        out[j++] = (k << 5) + (31 - Math.clz32(t));
        w = (w ^ t) >>> 0;
      }
    }
    return out;
  }

  /** Little-endian bytes, independent of the platform's byte order (for checkpoints). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.words.length * 4);
    for (let k = 0; k < this.words.length; k++) {
      const w = this.words[k];
      out[4 * k] = w & 0xff;
      out[4 * k + 1] = (w >>> 8) & 0xff;
      out[4 * k + 2] = (w >>> 16) & 0xff;
      out[4 * k + 3] = w >>> 24;
    }
    return out;
  }

  static fromBytes(length: number, bytes: Uint8Array): BitSet {
    const b = new BitSet(length);
    if (bytes.length !== b.words.length * 4) {
      throw new ArgumentError(`BitSet.fromBytes: ${length} bits need ${b.words.length * 4} bytes, got ${bytes.length}`);
    }
    for (let k = 0; k < b.words.length; k++) {
      b.words[k] = (bytes[4 * k] | (bytes[4 * k + 1] << 8) | (bytes[4 * k + 2] << 16) | (bytes[4 * k + 3] << 24)) >>> 0;
    }
    b.clearTail();
    return b;
  }

  /** Zeroes the unused high bits of the last word, restoring the invariant after word-level writes. */
  clearTail(): void {
    const r = this.length & 31;
    if (r !== 0) this.words[this.words.length - 1] &= (1 << r) - 1;
  }

  private checkIndex(i: number): void {
    if (!(i >= 0 && i < this.length && Number.isInteger(i))) {
      throw new ArgumentError(`BitSet: index ${i} out of range [0, ${this.length})`);
    }
  }
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
