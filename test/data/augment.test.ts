import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError, DtypeError, ShapeError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { augment, compose, horizontalFlip, randomAffine, randomCrop, type AffineParams } from '../../src/data/augment.js';
import { dispose, memory, tensor, tidy, type Tensor } from '../../src/tensor/index.js';

/** [B, C, H, W] float32 with distinct values; pixel (b, c, y, x) = 1 + b*1000 + c*100 + y*10 + x. */
function grid(b: number, c: number, h: number, w: number): { t: Tensor; at: (b: number, c: number, y: number, x: number) => number } {
  const at = (bi: number, ci: number, y: number, x: number) => 1 + bi * 1000 + ci * 100 + y * 10 + x;
  const data = new Float32Array(b * c * h * w);
  let k = 0;
  for (let bi = 0; bi < b; bi++) for (let ci = 0; ci < c; ci++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[k++] = at(bi, ci, y, x);
  return { t: tensor(data, { shape: [b, c, h, w] }), at };
}

/** Checks out[b, c, y, x] == want(b, c, y, x) for every element, within tol. */
function expectPixels(out: Tensor, want: (b: number, c: number, y: number, x: number) => number, tol = 0): void {
  const [B, C, H, W] = out.shape;
  const v = out.dataSync();
  let k = 0;
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const got = v[k++], exp = want(b, c, y, x);
    assert.ok(Math.abs(got - exp) <= tol, `(${b}, ${c}, ${y}, ${x}): got ${got}, want ${exp}`);
  }
}

test('horizontalFlip: flipped samples are mirrored exactly, others untouched', () => {
  const before = memory().tensors;
  const { t, at } = grid(4, 2, 3, 5);
  const flip = horizontalFlip();
  const params = Uint8Array.from([1, 0, 1, 0]);
  const out = flip.apply(t, params);
  expectPixels(out, (b, c, y, x) => (params[b] ? at(b, c, y, 4 - x) : at(b, c, y, x)));
  dispose(out);
  // All or none flipped take shortcuts; the result is still a new tensor.
  for (const all of [0, 1]) {
    const o = flip.apply(t, new Uint8Array(4).fill(all));
    expectPixels(o, (b, c, y, x) => at(b, c, y, all ? 4 - x : x));
    assert.notEqual(o, t);
    dispose(o);
  }
  // Works on uint8 as well (no interpolation involved).
  const u8 = tidy(() => t.remainder(256).to('uint8'));
  const o8 = flip.apply(u8, params);
  assert.equal(o8.dtype, 'uint8');
  expectPixels(o8, (b, c, y, x) => (params[b] ? at(b, c, y, 4 - x) : at(b, c, y, x)) % 256);
  dispose([t, out, u8, o8]);
  assert.equal(memory().tensors, before);
});

test('horizontalFlip: p=0.5 flips about half, seeded; p out of range is refused', () => {
  const flip = horizontalFlip();
  const s = flip.sample(new Rng(1), 4000, [1, 2, 2]);
  const n = s.reduce((a, b) => a + b, 0);
  assert.ok(n > 1800 && n < 2200, `${n} of 4000 flipped`);
  assert.deepEqual(flip.sample(new Rng(1), 4000, [1, 2, 2]), s);
  assert.equal(horizontalFlip({ p: 0 }).sample(new Rng(1), 50, [1, 2, 2]).reduce((a, b) => a + b, 0), 0);
  assert.equal(horizontalFlip({ p: 1 }).sample(new Rng(1), 50, [1, 2, 2]).reduce((a, b) => a + b, 0), 50);
  assert.throws(() => horizontalFlip({ p: 1.5 }), ArgumentError);
});

test('randomCrop: by hand on a 4x5 image with padding 2', () => {
  const before = memory().tensors;
  const { t, at } = grid(3, 2, 4, 5);
  const crop = randomCrop({ padding: 2 });
  // top = left = 0 moves the image down-right by 2; 4 moves it up-left by 2; 2 is the identity.
  const params = { top: Int32Array.from([0, 4, 2]), left: Int32Array.from([0, 4, 2]) };
  const out = crop.apply(t, params);
  assert.deepEqual(out.shape, [3, 2, 4, 5]);
  const rows = (out.toArray() as number[][][][]).map((s) => s[0]);
  assert.deepEqual(rows[0], [
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 1, 2, 3],
    [0, 0, 11, 12, 13],
  ]);
  assert.deepEqual(rows[1], [
    [1023, 1024, 1025, 0, 0],
    [1033, 1034, 1035, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  tidy(() => expectPixels(out.narrow(0, 2, 1), (b, c, y, x) => at(2, c, y, x)));
  dispose([t, out]);
  assert.equal(memory().tensors, before);
});

test('randomCrop: shifts exactly by the sampled offsets (any dtype), offsets cover 0..2p', () => {
  const before = memory().tensors;
  const { t, at } = grid(6, 3, 5, 4);
  const p = 2;
  const crop = randomCrop({ padding: p });
  const params = crop.sample(new Rng(3), 6, [3, 5, 4]);
  const want = (b: number, c: number, y: number, x: number) => {
    const sy = y + params.top[b] - p, sx = x + params.left[b] - p;
    return sy >= 0 && sy < 5 && sx >= 0 && sx < 4 ? at(b, c, sy, sx) : 0;
  };
  const out = crop.apply(t, params);
  expectPixels(out, want);
  const u8 = tidy(() => t.remainder(256).to('uint8'));
  const o8 = crop.apply(u8, params);
  expectPixels(o8, (b, c, y, x) => want(b, c, y, x) % 256);
  // augment() draws the same parameters from the same seed.
  const viaAugment = augment(crop, t, new Rng(3));
  assert.ok(viaAugment.equal(out));
  const many = crop.sample(new Rng(4), 2000, [3, 5, 4]);
  assert.deepEqual([...new Set(many.top)].sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual([...new Set(many.left)].sort(), [0, 1, 2, 3, 4]);
  // padding 0 is the identity.
  const id = augment(randomCrop({ padding: 0 }), t, new Rng(1));
  assert.ok(id.equal(t));
  assert.throws(() => crop.apply(t, { top: Int32Array.from([5, 0, 0, 0, 0, 0]), left: new Int32Array(6) }), ArgumentError);
  assert.throws(() => crop.apply(t, { top: new Int32Array(2), left: new Int32Array(2) }), ShapeError);
  assert.throws(() => randomCrop({ padding: -1 }), ArgumentError);
  dispose([t, out, u8, o8, viaAugment, id]);
  assert.equal(memory().tensors, before);
});

const params1 = (angle: number, tx = 0, ty = 0): AffineParams => ({ angle: Float64Array.of(angle), tx: Float64Array.of(tx), ty: Float64Array.of(ty) });

function randomImage(seed: number, shape: number[]): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.random()), { shape });
}

test('randomAffine: zero rotation and translation is the identity (within 1e-5)', () => {
  const before = memory().tensors;
  const x = randomImage(1, [3, 2, 7, 9]);
  const aff = randomAffine({ degrees: 0 });
  const s = aff.sample(new Rng(5), 3, [2, 7, 9]);
  assert.deepEqual([...s.angle, ...s.tx, ...s.ty], new Array(9).fill(0));
  for (const mode of ['bilinear', 'nearest'] as const) {
    const out = randomAffine({ degrees: 0, mode }).apply(x, s);
    const err = tidy(() => out.sub(x).abs().max().item());
    assert.ok(err < 1e-5, `${mode}: max error ${err}`);
    dispose(out);
  }
  dispose(x);
  assert.equal(memory().tensors, before);
});

test('randomAffine: 90 degrees turns a square image counter-clockwise (transpose, then flip rows)', () => {
  const before = memory().tensors;
  const x = randomImage(2, [2, 3, 6, 6]);
  const aff = randomAffine({ degrees: [90, 90] });
  const s = aff.sample(new Rng(0), 2, [3, 6, 6]);
  assert.deepEqual(Array.from(s.angle), [90, 90]);
  const [out, want, back, wantBack] = tidy(() => [
    aff.apply(x, s),
    x.transpose(2, 3).flip([2]), // out[i][j] = in[j][W-1-i]
    randomAffine({ degrees: [-90, -90] }).apply(x, { ...s, angle: Float64Array.of(-90, -90) }),
    x.transpose(2, 3).flip([3]), // clockwise: out[i][j] = in[H-1-j][i]
  ]);
  for (const [a, b] of [[out, want], [back, wantBack]]) {
    const err = tidy(() => a.sub(b).abs().max().item());
    assert.ok(err < 1e-4, `max error ${err}`);
  }
  dispose([x, out, want, back, wantBack]);
  assert.equal(memory().tensors, before);
});

test('randomAffine: 180 degrees on a non-square image flips both axes; whole-pixel shifts move exactly', () => {
  const before = memory().tensors;
  const { t, at } = grid(1, 1, 4, 6);
  const aff = randomAffine({ degrees: 0, translate: 0.5 });
  const rot = aff.apply(t, params1(180));
  expectPixels(rot, (b, c, y, x) => at(b, c, 3 - y, 5 - x), 1e-3);
  // tx = 2 (right), ty = -1 (up): out[y][x] = in[y + 1][x - 2], zero outside.
  const moved = aff.apply(t, params1(0, 2, -1));
  expectPixels(moved, (b, c, y, x) => (y + 1 < 4 && x - 2 >= 0 ? at(b, c, y + 1, x - 2) : 0), 1e-3);
  dispose([t, rot, moved]);
  assert.equal(memory().tensors, before);
});

test('randomAffine: sampled ranges follow torchvision (uniform angle, whole-pixel shifts up to t * size)', () => {
  const aff = randomAffine({ degrees: 10, translate: [0.1, 0.25] });
  const s = aff.sample(new Rng(9), 3000, [1, 28, 20]);
  const max = (a: Float64Array) => Math.max(...a.map(Math.abs));
  assert.ok(s.angle.every((a) => a >= -10 && a < 10));
  assert.ok(max(s.angle) > 9.9);
  assert.ok(s.tx.every(Number.isInteger) && s.ty.every(Number.isInteger));
  assert.equal(max(s.tx), 2); // 0.1 * width 20
  assert.equal(max(s.ty), 7); // 0.25 * height 28
  assert.deepEqual(aff.sample(new Rng(9), 3000, [1, 28, 20]), s);
  assert.throws(() => randomAffine({ degrees: [5, -5] }), ArgumentError);
  assert.throws(() => randomAffine({ degrees: 5, translate: 2 }), ArgumentError);
  const u8 = tensor(new Uint8Array(4), { shape: [1, 1, 2, 2] });
  assert.throws(() => aff.apply(u8, params1(3)), DtypeError);
  u8.dispose();
});

test('compose: parameters drawn in order, applied in order; no leaks across many batches', () => {
  const before = memory().tensors;
  const x = randomImage(3, [5, 3, 8, 8]);
  const crop = randomCrop({ padding: 2 }), flip = horizontalFlip(), aff = randomAffine({ degrees: 10, translate: 0.1 });
  const all = compose(crop, flip, aff);
  assert.equal(all.name, 'compose(randomCrop, horizontalFlip, randomAffine)');
  const ps = all.sample(new Rng(4), 5, [3, 8, 8]);
  const r = new Rng(4);
  const p0 = crop.sample(r, 5, [3, 8, 8]), p1 = flip.sample(r, 5, [3, 8, 8]), p2 = aff.sample(r, 5, [3, 8, 8]);
  assert.deepEqual(ps, [p0, p1, p2]);
  const got = all.apply(x, ps);
  const want = tidy(() => aff.apply(flip.apply(crop.apply(x, p0), p1), p2));
  assert.ok(got.allclose(want, 0, 0));
  dispose([got, want]);
  const mid = memory().tensors;
  const rng = new Rng(0);
  for (let i = 0; i < 30; i++) augment(all, x, rng).dispose();
  assert.equal(memory().tensors, mid);
  const none = compose();
  const same = none.apply(x, none.sample(rng, 5, [3, 8, 8]));
  assert.ok(same.equal(x));
  dispose([x, same]);
  assert.equal(memory().tensors, before);
});
