/**
 * Phase 2's mutation: importance-directed bit switching with rates that adapt to the offspring's success.
 *
 * A kept bit of importance s (in (0, 1), see importance.ts) is switched off with probability
 * min(1, 2 mu_off (1 - s)); a pruned bit is switched on with probability min(1, 2 mu_on s K / U),
 * K and U being the genome's kept and pruned bits (K at least 1). Unimportant weights are the ones
 * that go, important ones the ones that come back, and each direction moves about mu K weights: a
 * fixed fraction of the network's current size, whatever its density. (With the same per-bit rate
 * on both sides, a sparse network, which has far more pruned bits to switch on than kept ones to
 * switch off, would be pulled back toward half the heavy anchor's density at every mutation, and
 * the sparse end of the front would never move.)
 *
 * Adaptation (a 1/5-success rule per direction, after Rechenberg): each child is credited to the
 * direction of most of its switches ('off' on ties). After the generation's survival, S_d is the
 * fraction of direction-d children that entered the new population, and
 *     mu_d <- clip(mu_d * exp(beta (S_d - target)), minRate, maxRate)
 * with beta = 1 and target = 0.2: a direction that keeps producing survivors takes bigger steps,
 * one whose children die takes smaller ones. A direction with no children this generation keeps its rate.
 *
 * Sampling switch candidates costs O(expected switches), not O(bits): candidates are drawn at rate
 * lambda = the larger of the two base probabilities (2 mu_off and 2 mu_on K / U), with geometric
 * gaps, and accepted with the ratio of the wanted probability to lambda (thinning), which gives
 * exactly the probabilities above.
 */
import { ArgumentError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import type { BitSet } from '../../evo/bitset.js';
import type { Mutation } from '../../evo/types.js';

export interface RateRule {
  beta: number;
  target: number;
  minRate: number;
  maxRate: number;
}

export const DEFAULT_RULE: Omit<RateRule, 'minRate'> = { beta: 1, target: 0.2, maxRate: 0.25 };

/** One step of the success rule; `success` is null when no child went that way. */
export function adaptRate(rate: number, success: number | null, rule: RateRule): number {
  if (success === null) return rate;
  if (!(success >= 0 && success <= 1)) throw new ArgumentError(`adaptRate: success must be in [0, 1], got ${success}`);
  return Math.min(rule.maxRate, Math.max(rule.minRate, rate * Math.exp(rule.beta * (success - rule.target))));
}

export interface Rates { off: number; on: number }
export interface Adaptation { successOff: number | null; successOn: number | null; rates: Rates }

export class AdaptiveMutation implements Mutation<BitSet> {
  readonly name = 'importance_adaptive_mutation';
  rates: Rates;
  readonly rule: RateRule;
  /** Switches of each mutate() call since the last adapt(), in call order (NSGA-II mutates children in order). */
  private log: { off: number; on: number }[] = [];

  constructor(private readonly s: Float64Array, initialRate: number, rule: Partial<RateRule> = {}) {
    const n = s.length;
    this.rule = { ...DEFAULT_RULE, minRate: n > 0 ? Math.min(0.5 / n, initialRate) : initialRate, ...rule };
    if (!(initialRate > 0 && initialRate <= 0.5)) throw new ArgumentError(`AdaptiveMutation: initialRate must be in (0, 0.5], got ${initialRate}`);
    if (!(this.rule.maxRate <= 0.5)) throw new ArgumentError(`AdaptiveMutation: maxRate must be <= 0.5 so that 2 mu <= 1, got ${this.rule.maxRate}`);
    this.rates = { off: initialRate, on: initialRate };
  }

  mutate(g: BitSet, rng: Rng): BitSet {
    if (g.length !== this.s.length) throw new ArgumentError(`AdaptiveMutation: genome has ${g.length} bits, the importance ${this.s.length}`);
    const w = g.words, s = this.s, n = g.length;
    const kept = g.count(), pruned = n - kept;
    const pOff = 2 * this.rates.off;
    const pOn = pruned > 0 ? Math.min(1, (2 * this.rates.on * Math.max(1, kept)) / pruned) : 0;
    const lambda = Math.min(1, Math.max(pOff, pOn));
    let off = 0, on = 0;
    if (lambda >= 1) {
      for (let i = 0; i < n; i++) {
        const set = ((w[i >>> 5] >>> (i & 31)) & 1) === 1;
        const p = set ? pOff * (1 - s[i]) : pOn * s[i];
        if (rng.random() < p) { w[i >>> 5] ^= 1 << (i & 31); if (set) off++; else on++; }
      }
    } else {
      const logQ = Math.log1p(-lambda);
      for (let i = gap(rng, logQ); i < n; i += 1 + gap(rng, logQ)) {
        const set = ((w[i >>> 5] >>> (i & 31)) & 1) === 1;
        const p = set ? pOff * (1 - s[i]) : pOn * s[i];
        if (rng.random() * lambda < p) { w[i >>> 5] ^= 1 << (i & 31); if (set) off++; else on++; }
      }
    }
    this.log.push({ off, on });
    return g;
  }

  /**
   * After a generation's survival: `children` are the genomes just told (in ask order), `survivors`
   * the new population's genomes. Returns the success rates and the new rates.
   */
  adapt(children: readonly BitSet[], survivors: ReadonlySet<BitSet>): Adaptation {
    const log = this.log;
    this.log = [];
    if (log.length !== children.length) return { successOff: null, successOn: null, rates: { ...this.rates } };
    let nOff = 0, sOff = 0, nOn = 0, sOn = 0;
    children.forEach((c, i) => {
      const { off, on } = log[i];
      if (off === 0 && on === 0) return;
      const won = survivors.has(c) ? 1 : 0;
      if (off >= on) { nOff++; sOff += won; } else { nOn++; sOn += won; }
    });
    const successOff = nOff ? sOff / nOff : null, successOn = nOn ? sOn / nOn : null;
    this.rates = { off: adaptRate(this.rates.off, successOff, this.rule), on: adaptRate(this.rates.on, successOn, this.rule) };
    return { successOff, successOn, rates: { ...this.rates } };
  }

  /** Forget switches logged by an ask() whose batch will not be told (resume). */
  clearLog(): void { this.log = []; }
}

function gap(rng: Rng, logQ: number): number {
  return Math.floor(Math.log(1 - rng.random()) / logQ);
}
