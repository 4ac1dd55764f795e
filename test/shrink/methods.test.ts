/**
 * Structured granularity in the methods: magnitude, random, SNIP, GraSP (one shot) and PMP's
 * progressive schedule select whole channel groups, so coupled channels go together and every
 * result shrinks; a group's score is its mean |w| (magnitude) or its summed saliency (SNIP, GraSP).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed } from '../../src/core/runtime.js';
import { shrinkModel } from '../../src/graph/shrink.js';
import { createModel } from '../../src/models/registry.js';
import { scoreWith } from '../../src/prune/criteria.js';
import { pmpCallback } from '../../src/prune/methods/pmp.js';
import { pruneTo, pruneWith } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { randint, randn } from '../../src/tensor/creation.js';
import { dispose, tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { ChannelGroup } from '../../src/graph/depgroups.js';

const shape = [3, 8, 8];
const batch = () => ({ x: randn([8, ...shape]), y: randint(0, 10, [8]) });

/** Each group's score by hand from per-weight scores: 'sum' or mean |s| over its rows. */
function groupScores(t: PruneTarget, scores: Map<string, Tensor>, how: 'sum' | 'mean'): Map<number, number> {
  const rows = new Map<string, number[][]>();
  for (const [n, s] of scores) {
    const r = s.shape[0];
    const flat = s.dataSync(), size = flat.length / r;
    rows.set(n, Array.from({ length: r }, (_, i) => flat.slice(i * size, (i + 1) * size)));
  }
  const out = new Map<number, number>();
  for (const g of t.groups) {
    const vals = g.rows.flatMap((r) => rows.get(r.param)![r.start]);
    out.set(g.id, how === 'sum' ? vals.reduce((a, b) => a + b, 0) : vals.reduce((a, b) => a + Math.abs(b), 0) / vals.length);
  }
  return out;
}

const keptGroup = (t: PruneTarget, g: ChannelGroup) => tidy(() => t.mask(g.rows[0].param).narrow(0, g.rows[0].start, 1).any().item()) === 1;

for (const [criterion, how] of [['magnitude', 'mean'], ['snip', 'sum'], ['grasp', 'sum'], ['random', null]] as const) {
  test(`${criterion} structured on resnet20: whole coupled groups${how ? `, ranked by ${how === 'sum' ? 'summed saliency' : 'mean |w|'}` : ''}; the result shrinks exactly`, () => {
    manualSeed(5);
    const model = createModel('resnet20', { inputShape: shape, numClasses: 10 });
    const t = new PruneTarget(model, { granularity: 'structured', inputShape: shape });
    const ctx = { model, target: t, batch };
    let byHand: Map<number, number> | null = null;
    if (how) {
      manualSeed(9);
      const s = scoreWith(criterion, ctx, criterion === 'snip' || criterion === 'grasp' ? { samples: 8 } : {});
      byHand = groupScores(t, s, how);
      dispose([...s.values()]);
    }
    manualSeed(9);
    pruneWith(criterion, ctx, { sparsity: 0.4, scope: 'global', hparams: criterion === 'snip' || criterion === 'grasp' ? { samples: 8 } : {} });
    const kept = t.groups.filter((g) => keptGroup(t, g)), gone = t.groups.filter((g) => !keptGroup(t, g));
    assert.ok(kept.length > 0 && gone.length > 0);
    if (byHand) {
      // (GraSP's criterion already returns the importance, -(-w*Hg): the highest -w*Hg sums are removed.)
      const imp = (g: ChannelGroup) => byHand!.get(g.id)!;
      // Kept groups outscore removed ones, except a family's last group, which is always kept (no layer is emptied).
      const highGone = Math.max(...gone.map(imp));
      const sole = (g: ChannelGroup) => kept.filter((k) => k.family === g.family).length === 1;
      for (const g of kept) assert.ok(imp(g) >= highGone - 1e-6 * Math.abs(highGone) || sole(g), `${criterion}: kept group ${g.id} (${imp(g)}) below a removed one (${highGone})`);
    }
    for (const f of new Set(t.groups.map((g) => g.family))) assert.ok(kept.some((g) => g.family === f), `family ${f} keeps a group`);
    const r = shrinkModel(model, t.masks, { inputShape: shape });
    assert.equal(r.removedGroups.length, gone.length);
    r.dependencies.graph.dispose();
    dispose(Object.values(r.state));
    t.dispose();
    model.dispose();
  });
}

test('pmp structured: a progressive channel schedule, masks only shrink, every epoch shrinks', () => {
  manualSeed(6);
  const model = createModel('resnet20', { inputShape: shape, numClasses: 10 });
  const t = new PruneTarget(model, { granularity: 'structured', inputShape: shape });
  const cb = pmpCallback(t, { final: 0.6, phase: 3, scope: 'layer' });
  let prev = Infinity;
  for (let epoch = 0; epoch < 3; epoch++) {
    cb.onEpochStart!({ model, epoch } as never);
    const c = t.counts();
    assert.ok(c.kept < prev, `epoch ${epoch}: ${c.kept} kept`);
    prev = c.kept;
    const r = shrinkModel(model, t.masks, { inputShape: shape });
    const conv1 = r.layers.find((l) => l.name === 'layers.0.conv1.weight')!;
    assert.equal(conv1.kept, 16 - Math.round((0.6 * (epoch + 1) / 3) * 16), `epoch ${epoch}: per-layer channel schedule`);
    r.dependencies.graph.dispose();
    dispose(Object.values(r.state));
  }
  t.dispose();
  model.dispose();
});

test('a model whose channels cannot be followed (vit_tiny: tokens, last-dim features) is refused naming the op', () => {
  const model = createModel('vit_tiny', { inputShape: [1, 28, 28], numClasses: 10 });
  assert.throws(() => new PruneTarget(model, { granularity: 'structured', inputShape: [1, 28, 28] }),
    /structured pruning needs a prunable Linear or Conv2d layer before the output layer \(no channel group can be removed: e\.g\. it reaches 'permute' at 'patch_embed'\)/);
  model.dispose();
});
