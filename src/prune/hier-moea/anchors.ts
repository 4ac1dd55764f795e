/**
 * The two anchors phase 2 starts from, taken on the phase-1 front of (validation error, kept fraction):
 * - heavy: the sparsest solution whose error is within `tolerance` of the dense network's. Its alive
 *   weights are phase 2's search space; it is the densest network phase 2 looks at. When phase 1
 *   found networks more accurate than the dense one (pruning can help on the validation subset),
 *   the reference is the best of them instead: phase 2 can never reach what lies above its heavy
 *   anchor, so an anchor worse than a known network would give up the front's most accurate part.
 * - light: the knee of the front, the point where removing more weights starts to cost much error,
 *   which must be sparser than the heavy anchor. When the knee of the whole front is not sparser
 *   (the front bends above the tolerance line), the knee is taken among the heavy anchor and the
 *   points sparser than it; when that knee is the heavy anchor itself (no bend), the sparser
 *   neighbour of the heavy anchor is taken, so the light anchor is sparser whenever the front allows.
 */
import { ArgumentError } from '../../core/errors.js';
import { kneePoint } from '../../evo/knee.js';

export interface Anchors {
  heavy: number;
  light: number;
  /** How the light anchor was found: 'knee', 'knee_below_heavy', 'neighbour' or 'heavy' (nothing sparser). */
  lightRule: 'knee' | 'knee_below_heavy' | 'neighbour' | 'heavy';
  /** The error the tolerance is counted from: the dense network's, or the front's best when lower. */
  reference: number;
}

/** `front`: [error, kept] per point (all minimized). Indices refer to `front`. */
export function selectAnchors(front: readonly (readonly number[])[], denseError: number, tolerance: number): Anchors {
  if (front.length === 0) throw new ArgumentError('selectAnchors: empty front');
  for (const [i, p] of front.entries()) {
    if (p.length !== 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new ArgumentError(`selectAnchors: point ${i} is not a finite [error, kept] pair`);
  }
  const reference = Math.min(denseError, ...front.map((p) => p[0]));
  let heavy = -1;
  for (let i = 0; i < front.length; i++) {
    if (front[i][0] > reference + tolerance + 1e-12) continue;
    if (heavy < 0 || front[i][1] < front[heavy][1] || (front[i][1] === front[heavy][1] && front[i][0] < front[heavy][0])) heavy = i;
  }
  const hk = front[heavy][1];
  const knee = kneePoint(front);
  if (front[knee][1] < hk) return { heavy, light: knee, lightRule: 'knee', reference };
  const sub = [heavy];
  for (let i = 0; i < front.length; i++) if (front[i][1] < hk) sub.push(i);
  if (sub.length === 1) return { heavy, light: heavy, lightRule: 'heavy', reference };
  const k = sub[kneePoint(sub.map((i) => front[i]))];
  if (k !== heavy) return { heavy, light: k, lightRule: 'knee_below_heavy', reference };
  let next = sub[1];
  for (const i of sub.slice(1)) if (front[i][1] > front[next][1]) next = i;
  return { heavy, light: next, lightRule: 'neighbour', reference };
}
