/** LTH end to end on an MNIST subset: rounds as kept stages, masks only shrink, controls, resuming. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneConfigFrom, pruneEnv } from '../../src/cli/prune.js';
import { runPrune } from '../../src/prune/options.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { dispose, memory, tidy, type Tensor } from '../../src/tensor/index.js';
import { DATA, NO_MNIST, quickTrain } from './helpers.js';

interface Round { round: number; stage: string; sparsity: number; testAccuracy: number }

test('lth: 2 rounds at 20% / 10%, rewinding to θ0, reinit and random-mask controls, resume skips finished rounds', { skip: NO_MNIST }, async () => {
  const before = memory().tensors;
  const out = mkdtempSync(join(tmpdir(), 'topiary-lth-'));
  // Two rounds of (20% hidden, 10% output) leave 64.0% of the weights.
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 2 }), method: 'lth', sparsity: 0.35, controls: ['reinit', 'random_mask'] });
  assert.equal(prune.rate, 0.2);
  assert.equal(prune.outputRate, 0.1);
  const r = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  assert.equal(r.completed, true);
  const rec = r.record as { rounds: number; scope: string; perRound: Round[]; controls: (Round & { control: string })[] };
  assert.equal(rec.rounds, 2);
  assert.equal(rec.scope, 'layer');
  assert.deepEqual(rec.perRound.map((x) => x.round), [0, 1, 2]);
  assert.equal(rec.perRound[0].sparsity, 0, 'round 0 is the dense network');
  for (const x of rec.perRound) assert.ok(x.testAccuracy > 0.9, `round ${x.round}: ${x.testAccuracy}`);
  assert.deepEqual(rec.controls.map((c) => c.stage), ['round_2_reinit', 'round_2_random_mask']);

  // Per-layer counts: each round keeps n - round(rate * n) of what the last round kept.
  const masks = [1, 2].map((k) => loadSafetensors(join(out, `round_${k}`, 'masks.safetensors')).tensors);
  const counts = (m: Record<string, Tensor>) => tidy(() => ['1.weight', '3.weight', '5.weight'].map((n) => m[n].countNonzero().item()));
  const c1 = counts(masks[0]), c2 = counts(masks[1]);
  const rate = [0.2, 0.2, 0.1], full = [235200, 30000, 1000];
  c1.forEach((c, i) => assert.equal(c, full[i] - Math.round(rate[i] * full[i])));
  c2.forEach((c, i) => assert.equal(c, c1[i] - Math.round(rate[i] * c1[i])));
  // Masks only shrink: round 2's mask lies inside round 1's.
  for (const n of ['1.weight', '3.weight', '5.weight']) {
    const a = masks[0][n].dataSync(), b = masks[1][n].dataSync();
    b.forEach((v, i) => assert.ok(!v || a[i], `${n}[${i}] regrew`));
  }
  // The reinit control keeps the ticket's mask (with other initial values); the random-mask control its per-layer counts.
  const reinit = loadSafetensors(join(out, 'round_2_reinit', 'masks.safetensors')).tensors;
  const rmask = loadSafetensors(join(out, 'round_2_random_mask', 'masks.safetensors')).tensors;
  for (const n of ['1.weight', '3.weight', '5.weight']) assert.ok(reinit[n].equal(masks[1][n]), `${n}: reinit keeps the ticket's mask`);
  assert.deepEqual(counts(rmask), c2, 'random mask: the same per-layer counts');
  assert.ok(!rmask['1.weight'].equal(masks[1]['1.weight']), 'random mask differs from the ticket');
  dispose([...masks, reinit, rmask]);
  assert.ok(existsSync(join(out, 'init.safetensors')));
  assert.ok(!existsSync(join(out, 'round_1', 'checkpoints')), 'finished rounds drop their checkpoints');

  // Resume: finished rounds are skipped (their results read back), a lost round is redone.
  rmSync(join(out, 'round_2_random_mask'), { recursive: true });
  const t0 = readFileSync(join(out, 'round_1', 'result.json'), 'utf8');
  const again = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  assert.equal(readFileSync(join(out, 'round_1', 'result.json'), 'utf8'), t0, 'round 1 not retrained');
  assert.deepEqual((again.record as typeof rec).perRound, rec.perRound);
  assert.ok(existsSync(join(out, 'round_2_random_mask', 'result.json')));
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('lth: rewinding to iteration k saves the rewind point during round 0', { skip: NO_MNIST }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-lth-'));
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 1 }), method: 'lth', sparsity: 0.19, rewindIteration: 10 });
  const r = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  assert.equal((r.record as { rounds: number }).rounds, 1);
  const w0 = loadSafetensors(join(out, 'init.safetensors')).tensors, wk = loadSafetensors(join(out, 'rewind.safetensors')).tensors;
  assert.ok(!w0['1.weight'].equal(wk['1.weight']), 'the rewind point is not the initialization');
  dispose([w0, wk]);
});
