/**
 * The Pareto set's masks on disk: one safetensors file, one uint8 tensor of packed bits per solution
 * (bit i of the global layout, little-endian words, BitSet.toBytes), so a LeNet-5 mask takes 54 kB
 * instead of 431 kB as bool tensors. The metadata names the layers and their sizes, and loading
 * checks them against the model before any mask is used.
 */
import { SerializationError } from '../../core/errors.js';
import { BitSet } from '../../evo/bitset.js';
import { tensor } from '../../tensor/creation.js';
import { loadSafetensors, saveSafetensors } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { PrunableLayout } from './layout.js';

const FORMAT = 'topiary.hier-moea.masks/1';

export function saveMaskBits(path: string, layout: PrunableLayout, solutions: BitSet[]): void {
  const tensors: Record<string, Tensor> = {};
  try {
    solutions.forEach((b, i) => {
      if (b.length !== layout.total) throw new SerializationError(`saveMaskBits: solution ${i} has ${b.length} bits, the layout ${layout.total}`);
      tensors[key(i)] = tensor(b.toBytes());
    });
    saveSafetensors(path, tensors, {
      format: FORMAT, count: String(solutions.length),
      layers: JSON.stringify(layout.names.map((n, l) => [n, layout.sizes[l]])),
    });
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

export function loadMaskBits(path: string, layout: PrunableLayout): BitSet[] {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    if (metadata.format !== FORMAT) throw new SerializationError(`${path}: not a HIER-MOEA mask file (format ${JSON.stringify(metadata.format)})`);
    const want = JSON.stringify(layout.names.map((n, l) => [n, layout.sizes[l]]));
    if (metadata.layers !== want) throw new SerializationError(`${path}: masks are for layers ${metadata.layers}, the model has ${want}`);
    const n = Number(metadata.count);
    const out: BitSet[] = [];
    for (let i = 0; i < n; i++) {
      const t = tensors[key(i)];
      if (!t) throw new SerializationError(`${path}: no entry for solution ${i}`);
      out.push(BitSet.fromBytes(layout.total, t.toTypedArray() as Uint8Array));
    }
    return out;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

const key = (i: number) => `solution_${String(i).padStart(4, '0')}`;
