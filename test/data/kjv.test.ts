/**
 * The King James Bible reader: the text of Debian's bible-kjv-text through `bible`, checked by its
 * SHA-256 (31,102 verses, 63 characters); an absent file or program and a wrong text each give one
 * DatasetError naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DatasetError } from '../../src/core/errors.js';
import { KJV_DATA, KJV_PROGRAM, charCorpus, loadKjvText } from '../../src/data/kjv.js';

const skip = !(existsSync(KJV_DATA) && existsSync(KJV_PROGRAM)) && `bible-kjv-text / bible-kjv not installed (${KJV_DATA}, ${KJV_PROGRAM})`;

test('the King James Bible: 31,102 verses, 4,137,850 characters of 63 kinds, checksum verified', { skip }, () => {
  const t = loadKjvText();
  assert.equal(t.split('\n').length - 1, 31_102);
  assert.equal(t.length, 4_137_850);
  assert.ok(t.startsWith('In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void;'));
  assert.ok(t.endsWith('The grace of our Lord Jesus Christ be with you all. Amen.\n'));
  const c = charCorpus(t);
  assert.equal(c.vocab.length, 63);
  assert.equal(c.vocab[0], '\n');
  assert.equal(c.ids.length, t.length);
  assert.equal(c.vocab[c.ids[0]], 'I');
});

test('absent files and a wrong text are refused, naming the file', () => {
  assert.throws(() => loadKjvText({ data: '/nonexistent/bible.data' }),
    (e: unknown) => e instanceof DatasetError && e.file === '/nonexistent/bible.data' && /apt-get install bible-kjv/.test((e as Error).message));
  if (existsSync(KJV_DATA)) {
    assert.throws(() => loadKjvText({ program: '/nonexistent/bible' }), (e: unknown) => e instanceof DatasetError && /\/nonexistent\/bible is absent/.test((e as Error).message));
    // A program that prints something else: the checksum refuses it.
    assert.throws(() => loadKjvText({ program: '/bin/echo' }), (e: unknown) => e instanceof DatasetError && /SHA-256 [0-9a-f]{64}, expected cd45f0c9/.test((e as Error).message));
  }
});
