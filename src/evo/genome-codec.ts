/**
 * JSON encodings for genomes and objective values, so that a search's state can be
 * written to disk and read back bit for bit. JSON numbers round-trip doubles exactly
 * (shortest round-trip printing), but not -0, NaN or +-Infinity, hence the tagged forms.
 */
import { SerializationError } from '../core/errors.js';
import { BitSet } from './bitset.js';
import type { Genome } from './types.js';

export type EncodedNumber = number | 'Infinity' | '-Infinity' | 'NaN' | '-0';

export type EncodedGenome =
  | { kind: 'real'; values: EncodedNumber[] }
  | { kind: 'binary'; length: number; base64: string };

export function encodeNumber(x: number): EncodedNumber {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return x;
}

export function decodeNumber(e: EncodedNumber): number {
  if (typeof e === 'number') return e;
  switch (e) {
    case 'NaN': return NaN;
    case 'Infinity': return Infinity;
    case '-Infinity': return -Infinity;
    case '-0': return -0;
    default: throw new SerializationError(`decodeNumber: not an encoded number: ${JSON.stringify(e)}`);
  }
}

export function encodeGenome(g: Genome): EncodedGenome {
  if (g instanceof Float64Array) return { kind: 'real', values: Array.from(g, encodeNumber) };
  if (g instanceof BitSet) return { kind: 'binary', length: g.length, base64: Buffer.from(g.toBytes()).toString('base64') };
  throw new SerializationError('encodeGenome: a genome must be a Float64Array or a BitSet');
}

export function decodeGenome(e: EncodedGenome): Genome {
  if (e?.kind === 'real' && Array.isArray(e.values)) return Float64Array.from(e.values, decodeNumber);
  if (e?.kind === 'binary' && typeof e.base64 === 'string') {
    try {
      return BitSet.fromBytes(e.length, new Uint8Array(Buffer.from(e.base64, 'base64')));
    } catch (cause) {
      throw new SerializationError(`decodeGenome: bad binary genome of ${e.length} bits`, { cause });
    }
  }
  throw new SerializationError(`decodeGenome: unknown genome encoding ${JSON.stringify((e as { kind?: unknown })?.kind)}`);
}
