/** Channel dependency groups, checked by hand on ResNet-20 (option-A shortcuts) and ResNet-18 (projection shortcuts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dependencyGroups, type ChannelGroup, type Ref } from '../../src/graph/depgroups.js';
import { createModel } from '../../src/models/registry.js';

const fmt = (refs: Ref[]) => refs.map((r) => `${r.param}[${r.axis}:${r.start}${r.length > 1 ? `+${r.length}` : ''}]`).sort();
const groupOfRow = (gs: ChannelGroup[], param: string, row: number) => gs.find((g) => g.rows.some((r) => r.param === param && r.start === row))!;
const bn = (p: string, i: number) => ['weight', 'bias', 'running_mean', 'running_var'].map((k) => `${p}.${k}[0:${i}]`);

test('resnet20: a block\'s inner channel is one conv row, its BatchNorm entries and one column of conv2', () => {
  const model = createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 });
  const d = dependencyGroups(model, { inputShape: [3, 32, 32] });
  const g = groupOfRow(d.groups, 'layers.0.conv1.weight', 5);
  assert.ok(g.prunable);
  assert.deepEqual(fmt(g.rows), ['layers.0.conv1.weight[0:5]']);
  assert.deepEqual(fmt(g.entries), bn('layers.0.bn1', 5).sort());
  assert.deepEqual(fmt(g.cols), ['layers.0.conv2.weight[1:5]']);
  assert.equal(g.family, 'layers.0.conv1.weight');
  d.graph.dispose();
  model.dispose();
});

test('resnet20: a residual channel couples the stem and every conv2 through the identity and option-A (pad) shortcuts', () => {
  const model = createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 });
  const d = dependencyGroups(model, { inputShape: [3, 32, 32] });
  // Stage 1 channel 5 = stage 2 channel 5 + 8 (pad of 8 zero channels before) = stage 3 channel 13 + 16.
  const g = groupOfRow(d.groups, 'stem.0.weight', 5);
  assert.ok(g.prunable);
  assert.deepEqual(fmt(g.rows), [
    'layers.0.conv2.weight[0:5]', 'layers.1.conv2.weight[0:5]', 'layers.2.conv2.weight[0:5]',
    'layers.3.conv2.weight[0:13]', 'layers.4.conv2.weight[0:13]', 'layers.5.conv2.weight[0:13]',
    'layers.6.conv2.weight[0:29]', 'layers.7.conv2.weight[0:29]', 'layers.8.conv2.weight[0:29]', 'stem.0.weight[0:5]',
  ]);
  assert.deepEqual(fmt(g.entries), [...bn('stem.1', 5), ...bn('layers.0.bn2', 5), ...bn('layers.1.bn2', 5), ...bn('layers.2.bn2', 5),
    ...bn('layers.3.bn2', 13), ...bn('layers.4.bn2', 13), ...bn('layers.5.bn2', 13), ...bn('layers.6.bn2', 29), ...bn('layers.7.bn2', 29), ...bn('layers.8.bn2', 29)].sort());
  assert.deepEqual(fmt(g.cols), [
    'head.2.weight[1:29]', 'layers.0.conv1.weight[1:5]', 'layers.1.conv1.weight[1:5]', 'layers.2.conv1.weight[1:5]', 'layers.3.conv1.weight[1:5]',
    'layers.4.conv1.weight[1:13]', 'layers.5.conv1.weight[1:13]', 'layers.6.conv1.weight[1:13]', 'layers.7.conv1.weight[1:29]', 'layers.8.conv1.weight[1:29]',
  ]);
  // A channel of stage 2 in the pad zone has no stage-1 partner: the first block's zeros, then stage 3's middle.
  const p = groupOfRow(d.groups, 'layers.3.conv2.weight', 0);
  assert.ok(p.prunable);
  assert.deepEqual(fmt(p.rows), ['layers.3.conv2.weight[0:0]', 'layers.4.conv2.weight[0:0]', 'layers.5.conv2.weight[0:0]',
    'layers.6.conv2.weight[0:16]', 'layers.7.conv2.weight[0:16]', 'layers.8.conv2.weight[0:16]']);
  // Counting: 3 input channels and 10 classes are fixed; 16 + 16 + 32 residual groups; 3 x (16 + 32 + 64) inner groups.
  assert.equal(d.groups.length, 3 + 10 + 16 + 16 + 32 + 3 * (16 + 32 + 64));
  assert.deepEqual(d.groups.filter((x) => !x.prunable).map((x) => x.reason).sort(), [...Array(3).fill('it reaches the model input'), ...Array(10).fill('it reaches the model output')]);
  d.graph.dispose();
  model.dispose();
});

test('resnet18: projection shortcuts end the coupling (the 1x1 conv makes its own rows, coupled with conv2 of its block)', () => {
  const model = createModel('resnet18', { inputShape: [3, 16, 16], numClasses: 10 });
  const d = dependencyGroups(model, { inputShape: [3, 16, 16] });
  const g = groupOfRow(d.groups, 'layers.2.conv2.weight', 7);
  assert.deepEqual(fmt(g.rows), ['layers.2.conv2.weight[0:7]', 'layers.2.shortcut.0.weight[0:7]', 'layers.3.conv2.weight[0:7]']);
  assert.ok(fmt(g.entries).includes('layers.2.shortcut.1.weight[0:7]'));
  const s = groupOfRow(d.groups, 'stem.0.weight', 7);
  assert.deepEqual(fmt(s.rows), ['layers.0.conv2.weight[0:7]', 'layers.1.conv2.weight[0:7]', 'stem.0.weight[0:7]']);
  assert.deepEqual(fmt(s.cols), ['layers.0.conv1.weight[1:7]', 'layers.1.conv1.weight[1:7]', 'layers.2.conv1.weight[1:7]', 'layers.2.shortcut.0.weight[1:7]']);
  d.graph.dispose();
  model.dispose();
});
