/**
 * A short real run: the MLP on a 12,000-image MNIST subset for 3 epochs under the replicator
 * dynamics, then physical removal. Asserts real accuracy, the stated number of neurons in the
 * pruned models, that fine-tuning (optional) recovers accuracy, that a saved pruned model reloads (also as createModel('mlp', {widths})) with the
 * reported accuracy, that masses were recorded, that every row carries its validation accuracy and
 * that a run stored without validation rows gets them filled in from its model.safetensors, with
 * the stored test numbers reproduced exactly, and that bad options are rejected by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { runEvoPop } from '../../src/experiment/reproduce-evo-pop.js';
import { createModel } from '../../src/models/registry.js';
import { EvoConfig, loadPruned } from '../../src/prune/evo-pop/index.js';
import { evaluate } from '../../src/train/evaluate.js';
import { memory } from '../../src/tensor/index.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA ?? '/work/shared/datasets';
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;

test('EVO-POP end to end on MNIST: trains, removes 35% and 50% of 768 neurons physically, reloads', { skip }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'evo-pop-e2e-'));
  const before = memory().tensors;
  try {
    const c = validate(TrainConfig, { model: 'mlp', dataset: 'mnist', epochs: 3, batchSize: 128, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, subset: 12000, threads: 1 });
    const e = validate(EvoConfig, { dynamics: 'replicator', fitness: 'gradient', eta: 0.01, pruneAt: [0.35, 0.5], criteria: ['mass', 'random'], recordEvery: 20, finetuneEpochs: 1 });
    const s = await runEvoPop(c, e, { out, dataDir });
    assert.ok(s.denseAccuracy > 0.93, `dense test accuracy ${s.denseAccuracy}`);
    assert.deepEqual(s.populations, { 1: 512, 2: 256 });
    for (const r of s.rows) {
      assert.equal(r.total, 768);
      assert.equal(r.removed, Math.round(r.fraction * 768), `${r.criterion} ${r.fraction}: removed`);
      assert.equal(r.kept[0] + r.kept[1], 768 - Math.round(r.fraction * 768));
      assert.equal(r.params, 784 * r.kept[0] + r.kept[0] + r.kept[0] * r.kept[1] + r.kept[1] + r.kept[1] * 10 + 10, 'a physically smaller model');
      assert.ok(r.accuracy > 0.5, `${r.criterion} ${r.fraction}: ${r.accuracy}`);
      assert.ok(r.valAccuracy! > 0.5 && r.finetunedValAccuracy! > 0.5, `${r.criterion} ${r.fraction}: validation ${r.valAccuracy}, fine-tuned ${r.finetunedValAccuracy}`);
    }
    assert.ok(s.denseValAccuracy! > 0.93, `dense validation accuracy ${s.denseValAccuracy}`);
    assert.equal(s.validationFilledIn, undefined);
    const at = (crit: string, f: number) => s.rows.find((r) => r.criterion === crit && r.fraction === f)!;
    assert.ok(at('mass', 0.5).accuracy > 0.9, `removing half by mass keeps accuracy (${at('mass', 0.5).accuracy})`);
    // one epoch of fine-tuning recovers most of what random removal lost
    const rnd = at('random', 0.5);
    assert.ok(rnd.finetunedAccuracy! > rnd.accuracy && rnd.finetunedAccuracy! > 0.9, `fine-tuned ${rnd.finetunedAccuracy} after ${rnd.accuracy}`);
    // the saved pruned model reloads, from its architecture and as an mlp of the stated widths, with the reported accuracy
    const dir = join(out, 'pruned_mass_0.5');
    const { model, architecture } = loadPruned(dir);
    assert.deepEqual(architecture.widths, at('mass', 0.5).kept);
    assert.equal(architecture.widths!.reduce((a, b) => a + b, 0), 384);
    const data = await setupData(c, { dataDir });
    const saved = at('mass', 0.5).finetunedAccuracy!; // the saved model is the fine-tuned one
    assert.equal(evaluate(model, data.testLoader.epoch(0)).accuracy, saved);
    const mlp = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: architecture.widths });
    mlp.loadStateDict(model.stateDict());
    assert.equal(evaluate(mlp, data.testLoader.epoch(0)).accuracy, saved);
    model.dispose(); mlp.dispose(); data.dispose();
    // masses were recorded over training, every population in every snapshot
    const t = JSON.parse(readFileSync(join(out, 'trajectory.json'), 'utf8')) as { steps: number[]; masses: Record<string, number[][]> };
    assert.ok(t.steps.length >= 5 && t.steps[0] === 0);
    assert.equal(t.masses['1'].length, t.steps.length);
    assert.equal(t.masses['2'][0].length, 256);
    assert.ok(t.masses['1'][t.steps.length - 1].some((m) => Math.abs(m - 1) > 0.05), 'the dynamics moved the masses');
    const total = t.masses['2'][t.steps.length - 1].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 256) < 0.05, `replicator conserved the layer's mass (${total})`);
    // a finished run is not redone
    const again = await runEvoPop(c, e, { out, dataDir });
    assert.equal(again.denseAccuracy, s.denseAccuracy);
    // a run stored before rows carried validation accuracy: filled in from model.safetensors (the
    // removal stage rerun, fine-tuning included), every stored test number reproduced exactly
    const file = join(out, 'evo.json');
    const old = JSON.parse(readFileSync(file, 'utf8')) as typeof s;
    delete old.denseValAccuracy;
    old.rows = old.rows.map(({ valAccuracy: _v, valLoss: _l, finetunedValAccuracy: _f, ...r }) => r);
    writeFileSync(file, JSON.stringify(old));
    const filled = await runEvoPop(c, e, { out, dataDir });
    assert.ok(filled.validationFilledIn && filled.validationFilledIn.seconds > 0);
    assert.equal(filled.denseValAccuracy, s.denseValAccuracy);
    assert.deepEqual(filled.rows, s.rows, 'the same rows, validation and test, as the original run');
    assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as typeof s).rows, s.rows, 'written to evo.json');
    // a stored test number that the saved model does not reproduce is refused, and evo.json is left as it was
    old.rows[1].accuracy += 1e-4;
    writeFileSync(file, JSON.stringify(old));
    await assert.rejects(runEvoPop(c, e, { out, dataDir }), /evo\.json: removing mass@0\.5 again does not reproduce the stored row \(test accuracy/);
    assert.equal(readFileSync(file, 'utf8'), JSON.stringify(old));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.ok(memory().tensors - before < 5, `tensors alive: ${memory().tensors - before}`);
});

test('topiary evo rejects bad options with a message naming the field', () => {
  const run = (args: string[]) => {
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'evo', ...args], { cwd: repo, stdio: 'pipe', encoding: 'utf8' });
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { status: number; stderr: string };
      return { code: x.status, err: x.stderr };
    }
  };
  for (const [args, field] of [[['--eta', '0'], /eta: /], [['--prune-at', '0.35,1'], /pruneAt\.1: /],
    [['--model', 'resnet20', '--dataset', 'cifar10'], /model: 'resnet20'.*population-scalable/]] as const) {
    const r = run([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit code (stderr: ${r.err})`);
    assert.match(r.err, field, args.join(' '));
  }
});
