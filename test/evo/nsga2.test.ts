import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError, SerializationError } from '../../src/core/errors.js';
import { BitSet } from '../../src/evo/bitset.js';
import { bitFlipMutation, twoPointCrossover } from '../../src/evo/binary-operators.js';
import { hypervolume } from '../../src/evo/hypervolume.js';
import { minimize, Nsga2, type Nsga2Options } from '../../src/evo/nsga2.js';
import { polynomialMutation, sbx } from '../../src/evo/real-operators.js';
import { binarySampling, realUniformSampling } from '../../src/evo/sampling.js';
import { dominates } from '../../src/evo/sorting.js';
import { maxEvaluations, maxGenerations } from '../../src/evo/termination.js';
import { zdt1, zdt2, type ZdtProblem } from '../../src/evo/zdt.js';
import type { Genome, Population, Termination } from '../../src/evo/types.js';

function realOptions(p: ZdtProblem, seed: number, termination?: Termination): Nsga2Options<Float64Array> {
  return {
    popSize: 100,
    rng: new Rng(seed),
    sampling: realUniformSampling(p.bounds),
    crossover: sbx({ bounds: p.bounds }),
    mutation: polynomialMutation({ bounds: p.bounds }),
    termination,
  };
}

const snapshot = <G extends Genome>(pop: Population<G>) =>
  pop.map((i) => ({ g: i.genome instanceof BitSet ? Array.from(i.genome.words) : Array.from(i.genome), o: i.objectives, r: i.rank, c: i.crowding }));

for (const problem of [zdt1(), zdt2()]) {
  test(`Nsga2 on ${problem.name}: pop 100, 250 generations reach >= 97% of the optimal hypervolume`, (t) => {
    const algo = new Nsga2(realOptions(problem, 1, maxGenerations(250)));
    const front = minimize(algo, (x) => problem.evaluate(x));
    assert.equal(algo.evaluations, 25_000);
    assert.equal(algo.generation, 250);
    const ratio = hypervolume(front.map((i) => i.objectives), [1, 1]) / problem.optimalHypervolume;
    t.diagnostic(`${problem.name} hypervolume ratio ${ratio.toFixed(4)}`);
    assert.ok(ratio >= 0.97, `${problem.name}: ${ratio}`);
    for (const a of front) for (const b of front) assert.ok(!dominates(a.objectives, b.objectives));
  });
}

test('Nsga2: a fixed seed fixes the run; another seed changes it', () => {
  const p = zdt1();
  const run = (seed: number) => snapshot(minimize(new Nsga2(realOptions(p, seed, maxGenerations(15))), (x) => p.evaluate(x)));
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
});

test('Nsga2: 10 generations equal 5, serialize to JSON, restore, 5 more (real genomes)', () => {
  const p = zdt2();
  const straight = new Nsga2(realOptions(p, 3, maxGenerations(10)));
  minimize(straight, (x) => p.evaluate(x));

  const first = new Nsga2(realOptions(p, 3, maxGenerations(5)));
  minimize(first, (x) => p.evaluate(x));
  const json = JSON.stringify(first.state());
  const resumed = Nsga2.restore(JSON.parse(json), realOptions(p, 12345, maxGenerations(10)));
  assert.equal(resumed.generation, 5);
  minimize(resumed, (x) => p.evaluate(x));

  assert.equal(resumed.evaluations, straight.evaluations);
  assert.deepEqual(snapshot(resumed.population), snapshot(straight.population));
  assert.deepEqual(snapshot(resumed.result()), snapshot(straight.result()));
  assert.deepEqual(JSON.stringify(resumed.state()), JSON.stringify(straight.state()));
});

// A binary problem: minimize the number of set bits and the distance to a target mask.
function binaryProblem(n: number) {
  const target = BitSet.fromBits(Array.from({ length: n }, (_, i) => i % 3 === 0));
  return (g: BitSet): number[] => {
    let diff = 0;
    for (let k = 0; k < g.words.length; k++) {
      let x = (g.words[k] ^ target.words[k]) >>> 0;
      while (x) { x &= x - 1; diff++; }
    }
    return [g.count() / n, diff / n];
  };
}

test('Nsga2: binary genomes, resumed between ask and tell, match an uninterrupted run', () => {
  const n = 3000;
  const evaluate = binaryProblem(n);
  const options = (seed: number): Nsga2Options<BitSet> => ({
    popSize: 20,
    rng: new Rng(seed),
    sampling: binarySampling({ nBits: n, probs: 0.5 }),
    crossover: twoPointCrossover(),
    mutation: bitFlipMutation({ nBits: n }),
    termination: maxEvaluations(200),
  });
  const straight = new Nsga2(options(4));
  straight.tell(straight.ask().map(evaluate));
  const bestSum = (pop: Population<BitSet>) => Math.min(...pop.map((i) => i.objectives[0] + i.objectives[1]));
  const initialBest = bestSum(straight.population);
  minimize(straight, evaluate);

  const first = new Nsga2(options(4));
  for (let g = 0; g < 4; g++) first.tell(first.ask().map(evaluate));
  const asked = first.ask();
  const resumed = Nsga2.restore(JSON.parse(JSON.stringify(first.state())), options(0));
  assert.deepEqual(resumed.ask().map((g) => Array.from(g.words)), asked.map((g) => Array.from(g.words)));
  minimize(resumed, evaluate);
  assert.equal(resumed.generation, 10);
  assert.deepEqual(snapshot(resumed.population), snapshot(straight.population));
  // Progress towards the front, where count + distance = 1/3.
  assert.ok(bestSum(straight.result()) < initialBest, `best sum ${bestSum(straight.result())} vs ${initialBest} at first`);
});

test('Nsga2: misuse is reported with the values involved', () => {
  const p = zdt1();
  const algo = new Nsga2(realOptions(p, 1));
  assert.throws(() => algo.tell([]), ArgumentError);
  const batch = algo.ask();
  assert.equal(algo.ask(), batch, 'asking twice returns the same batch');
  assert.throws(() => algo.tell([[0, 0]]), ArgumentError);
  assert.throws(() => algo.tell(batch.map(() => [0, NaN])), ArgumentError);
  assert.throws(() => minimize(algo, (x) => p.evaluate(x)), ArgumentError);
  assert.throws(() => new Nsga2({ ...realOptions(p, 1), popSize: 1 }), ArgumentError);
  assert.throws(() => Nsga2.restore({ ...algo.state(), format: 'other' } as never, realOptions(p, 1)), SerializationError);
  assert.throws(() => Nsga2.restore(algo.state(), { ...realOptions(p, 1), popSize: 50 }), SerializationError);
});
