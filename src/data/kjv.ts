/**
 * The King James Bible (1611, public domain) as a character corpus, from Debian's bible-kjv-text
 * (the compressed text /usr/lib/bible.data) read through the `bible` program of bible-kjv. The
 * program's dump of Gen1:1-Rev22:21 (one verse a line, "Ge1:1 In the beginning ...") is checked
 * against its SHA-256, then the references are dropped: 31,102 verses, one a line.
 * Absent files give one clear DatasetError naming the file and the package to install.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { DatasetError } from '../core/errors.js';

/** SHA-256 of `bible -f Gen1:1-Rev22:21` (bible-kjv 4.x over bible-kjv-text, 4,404,412 bytes). */
export const KJV_SHA256 = 'cd45f0c9cedab8e4439bd6486c8952c77cc8b0ecc5d1f6ae3513f2039f47229d';
export const KJV_DATA = '/usr/lib/bible.data';
export const KJV_PROGRAM = '/usr/bin/bible';

export interface KjvOptions { data?: string; program?: string }

/** The verses' text, one verse a line (references removed). */
export function loadKjvText(o: KjvOptions = {}): string {
  const data = o.data ?? KJV_DATA, program = o.program ?? KJV_PROGRAM;
  if (!existsSync(data)) throw new DatasetError(`King James Bible text not found: ${data} is absent (install the Debian packages bible-kjv-text and bible-kjv: apt-get install bible-kjv)`, data);
  if (!existsSync(program)) throw new DatasetError(`King James Bible reader not found: ${program} is absent (install the Debian package bible-kjv: apt-get install bible-kjv)`, program);
  let raw: Buffer;
  try {
    const args = ['-f', 'Gen1:1-Rev22:21', ...(o.data ? ['-d', data.replace(/\.data$/, '')] : [])];
    raw = execFileSync(program, args, { maxBuffer: 64 << 20, env: { PATH: '/usr/bin:/bin', LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new DatasetError(`${program} could not read ${data}: ${(e as Error).message.split('\n')[0]}`, data, { cause: e });
  }
  const sum = createHash('sha256').update(raw).digest('hex');
  if (sum !== KJV_SHA256) throw new DatasetError(`${data}: the text read has SHA-256 ${sum}, expected ${KJV_SHA256} (a different or damaged bible-kjv-text)`, data);
  return raw.toString('latin1').split('\n').filter((l) => l.length > 0).map((l) => l.slice(l.indexOf(' ') + 1)).join('\n') + '\n';
}

/** A character vocabulary (sorted code points of the text) and the text as indices. */
export interface CharCorpus { vocab: string[]; ids: Int32Array }

export function charCorpus(text: string): CharCorpus {
  const vocab = [...new Set(text)].sort();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const ids = new Int32Array(text.length);
  for (let i = 0; i < text.length; i++) ids[i] = index.get(text[i])!;
  return { vocab, ids };
}
