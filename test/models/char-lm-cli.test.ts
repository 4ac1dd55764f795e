/**
 * `topiary train --model char_lm --dataset kjv`: a tiny budget already beats the unigram baseline
 * of the text (result.json and the printout say both); a missing bible file, a kjv run of another
 * model, an option char_lm does not take, or a head count that does not divide the width is one
 * line naming it, and nothing is written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KJV_DATA, KJV_PROGRAM } from '../../src/data/kjv.js';

const repo = join(import.meta.dirname, '..', '..');
const root = mkdtempSync(join(tmpdir(), 'topiary-charlm-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function topiary(args: string[]) {
  const r = spawnSync(process.execPath, [join(repo, 'bin/topiary.js'), ...args], { cwd: repo, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const skip = !(existsSync(KJV_DATA) && existsSync(KJV_PROGRAM)) && `bible-kjv-text / bible-kjv not installed (${KJV_DATA}, ${KJV_PROGRAM})`;

// Measured (seed 0, one thread): validation perplexity 10.71 after 80 steps of 16 windows; the
// characters' frequencies alone give 20.49.
test('train --model char_lm --dataset kjv: 80 steps reach a validation perplexity below the unigram baseline (20.49)', { skip }, () => {
  const out = join(root, 'run');
  const r = topiary(['train', '--model', 'char_lm', '--dataset', 'kjv', '--steps', '80', '--batch-size', '16', '--threads', '1', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.equal(res.model, 'char_lm');
  assert.equal(res.dataset, 'kjv');
  assert.equal(res.steps, 80);
  assert.equal(res.params, 112_319);
  assert.ok(Math.abs(res.unigramPerplexity - 20.49) < 0.01, `unigram ${res.unigramPerplexity}`);
  assert.ok(res.valPerplexity < 0.8 * res.unigramPerplexity, `validation perplexity ${res.valPerplexity}, unigram ${res.unigramPerplexity}`);
  assert.ok(Math.abs(Math.exp(res.valLoss) - res.valPerplexity) < 1e-9);
  assert.match(r.stdout, new RegExp(`^char_lm on kjv: validation perplexity ${res.valPerplexity.toFixed(2)} \\(unigram baseline 20\\.49\\), 112319 parameters, 80 steps`));
  assert.ok(existsSync(join(out, 'model.safetensors')));
});

test('char_lm bad input: a missing bible file, kjv with another model, mnist with char_lm, --epochs, a head count that does not divide the width: one line naming it, nothing written', () => {
  const recipe = join(root, 'heads3.yaml');
  writeFileSync(recipe, 'heads: 3\ndim: 64\n');
  const cases: [string[], RegExp][] = [
    [['--model', 'char_lm', '--dataset', 'kjv', '--data-dir', join(root, 'nowhere')], /^topiary: King James Bible text not found: .*nowhere\/bible\.data is absent \(install the Debian packages bible-kjv-text and bible-kjv/],
    [['--model', 'lenet5', '--dataset', 'kjv'], /^topiary: model: the kjv dataset is text; only char_lm trains on it, got 'lenet5'/],
    [['--model', 'char_lm', '--dataset', 'mnist'], /dataset: char_lm trains on 'kjv'/],
    [['--model', 'char_lm', '--dataset', 'kjv', '--epochs', '3'], /epochs: not an option of char_lm/],
    [['--model', 'char_lm', '--dataset', 'kjv', '--recipe', recipe], /heads: 3 heads do not divide the width 64 \(dim\)/],
  ];
  cases.forEach(([args, re], i) => {
    const out = join(root, `bad${i}`);
    const r = topiary(['train', ...args, '--steps', '1', '--out', out]);
    assert.notEqual(r.status, 0, args.join(' '));
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --verbose'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    assert.ok(!existsSync(out), `${args.join(' ')}: nothing written`);
  });
});
