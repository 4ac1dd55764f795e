/**
 * Invalid calls raise the specific typed error, with a message that names the op and the values,
 * and the process lives on: nothing native aborts, and an op after all the errors still works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArgumentError, DisposedTensorError, DtypeError, EngineError, SerializationError, ShapeError, TopiaryError,
} from '../../src/core/errors.js';
import { manualSeed, setNumThreads } from '../../src/core/runtime.js';
import {
  F, arange, cat, decodeSafetensors, encodeSafetensors, grad, linspace, loadSafetensors, memory, ones, randint, stack, tensor, tidy, where, zeros,
} from '../../src/tensor/index.js';

type ErrorClass = new (...args: never[]) => TopiaryError;
const startTensors = memory().tensors;
let count = 0;

/** `fn` must throw exactly `cls` (not merely a TopiaryError) with a message matching every pattern. */
function fails(name: string, fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): void {
  test(name, () => {
    tidy(() => {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof TopiaryError, `${name}: expected a TopiaryError, got ${String(e)}`);
        assert.equal(e.constructor, cls, `${name}: expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
        for (const p of patterns) assert.match(e.message, p, `${name}: message`);
        assert.ok(e.message.length < 400, `${name}: message is one readable line, not a backtrace`);
        assert.doesNotMatch(e.message, /Exception raised from|frame #/, `${name}: no C++ backtrace`);
        return true;
      });
    });
    count++;
  });
}

const long = (data: number[] | number[][], shape?: number[]) => tensor(data, { dtype: 'int64', shape });

// ---- shapes ------------------------------------------------------------------------------------------
fails('add: shapes that do not broadcast', () => zeros([2, 3]).add(zeros([4])), ShapeError, /^add: /, /\(3\).*\(4\)/);
fails('matmul: inner dims differ', () => zeros([2, 3]).matmul(zeros([4, 5])), ShapeError, /^matmul: /, /2x3 and 4x5/);
fails('linear: in-features differ', () => F.linear(zeros([2, 3]), zeros([4, 5])), ShapeError, /^linear: /, /\[2,3\]/, /\[4,5\]/);
fails('linear: bias of the wrong size', () => F.linear(zeros([2, 3]), zeros([4, 3]), zeros([5])), ShapeError, /^linear: /, /\(4\).*\(5\)/);
fails('conv2d: channel mismatch', () => F.conv2d(zeros([1, 3, 5, 5]), zeros([2, 2, 3, 3])), ShapeError, /^conv2d: /, /3 channels/, /expects 2/);
fails('conv2d: 3-d input', () => F.conv2d(zeros([3, 5, 5]), zeros([2, 3, 3, 3])), ShapeError, /^conv2d: /, /\[3,5,5\]/);
fails('conv2d: kernel larger than the input', () => F.conv2d(zeros([1, 2, 2, 2]), zeros([2, 2, 3, 3])), ShapeError, /^conv2d: /, /Kernel size/);
fails('cat: sizes differ off the cat dim', () => cat([zeros([2, 3]), zeros([3, 2])], 0), ShapeError, /^cat: /, /Expected size 3 but got size 2/);
fails('stack: unequal shapes', () => stack([zeros([2]), zeros([3])]), ShapeError, /^stack: /, /\[2\].*\[3\]/);
fails('reshape: incompatible size', () => zeros([2, 3]).reshape(4, 2), ShapeError, /^reshape: /, /\[4, 2\]/, /size 6/);
fails('reshape: negative dims', () => zeros([2, 3]).reshape(-2, -3), ShapeError, /^reshape: /, /-2/);
fails('view: non-contiguous input', () => zeros([2, 3]).T.view(6), ShapeError, /^view: /, /reshape/);
fails('zeros: negative shape', () => zeros([2, -1]), ShapeError, /^zeros: /, /\[2,-1\]/);
fails('ones: fractional shape', () => ones([2.5]), ShapeError, /^ones: /, /2\.5/);
fails('tensor: ragged nested array', () => tensor([[1, 2], [3]]), ShapeError, /^tensor: /, /ragged/);
fails('tensor: typed array does not fit the shape', () => tensor(new Float32Array(5), { shape: [2, 3] }), ShapeError, /5 elements/, /\[2,3\]/);
fails('expand: non-singleton dim', () => zeros([2, 3]).expand(3, 3), ShapeError, /^expand: /, /\(3\).*\(2\)/);
fails('mseLoss: shapes differ', () => F.mseLoss(zeros([2, 3]), zeros([4])), ShapeError, /^mseLoss: /);
fails('batchNorm: running stats of the wrong size', () => F.batchNorm(zeros([2, 3]), { runningMean: zeros([4]), runningVar: ones([4]) }),
  ShapeError, /^batchNorm: /, /3 elements not 4/);
fails('nllLoss: batch sizes differ', () => F.nllLoss(zeros([2, 3]), long([0, 1, 2])), ShapeError, /^nllLoss: /, /\[2,3\]/, /\[3\]/);
fails('maxPool2d: 2-d input', () => F.maxPool2d(zeros([2, 2]), 2), ShapeError, /^maxPool2d: /, /\[2,2\]/);
fails('affineGrid: theta not [N, 2, 3]', () => F.affineGrid(zeros([1, 2, 2]), [1, 1, 2, 2]), ShapeError, /^affineGrid: /, /\[1,2,2\]/);
fails('item: many elements', () => zeros([2, 2]).item(), ShapeError, /^item: /, /4 elements/, /\[2,2\]/);
fails('grad setter: wrong shape', () => { const x = zeros([3], { requiresGrad: true }); x.grad = zeros([2]); }, ShapeError, /^grad: /, /\[2\]/, /\[3\]/);
fails('grad setter: wrong dtype', () => { const x = zeros([3], { requiresGrad: true }); x.grad = zeros([3], { dtype: 'float64' }); }, DtypeError, /^grad: /, /float64/, /float32/);
fails('backward: non-scalar output', () => zeros([2], { requiresGrad: true }).mul(2).backward(), ShapeError, /^backward: /, /\[2\]/);

// ---- dtypes ------------------------------------------------------------------------------------------
fails('crossEntropy: float targets', () => F.crossEntropy(zeros([2, 3]), zeros([2])), DtypeError, /^crossEntropy: /, /int64/, /float32/);
fails('crossEntropy: int32 targets', () => F.crossEntropy(zeros([2, 3]), zeros([2], { dtype: 'int32' })), DtypeError, /^crossEntropy: /, /int32/);
fails('crossEntropy: integer logits', () => F.crossEntropy(zeros([2, 3], { dtype: 'int64' }), long([0, 1])), DtypeError, /^crossEntropy: /, /Long/);
fails('oneHot: float indices', () => F.oneHot(zeros([2])), DtypeError, /^oneHot: /, /float32/);
fails('unknown dtype', () => zeros([2], { dtype: 'float128' as never }), DtypeError, /'float128'/, /known: .*float32/);
fails('to: unknown dtype', () => zeros([2]).to('complex64' as never), DtypeError, /'complex64'/);
fails('mean of an integer tensor', () => long([1, 2]).mean(), DtypeError, /^mean: /, /Long/);
fails('in-place float result into int64', () => long([1, 2]).add_(zeros([2])), DtypeError, /^add_: /, /Float.*Long/);
fails('indexSelect: float index', () => zeros([2, 3]).indexSelect(0, tensor([0, 1])), DtypeError, /^indexSelect: /, /int64/);
fails('gather: int32 index', () => zeros([2, 3]).gather(1, tensor([[0, 1]], { dtype: 'int32' })), DtypeError, /^gather: /, /int64/);
fails('where: float condition', () => where(zeros([2]), zeros([2]), zeros([2])), DtypeError, /^where: /, /boolean/);
fails('maskedFill: float mask', () => zeros([3]).maskedFill(tensor([1, 0, 0.5]), 1), DtypeError, /^maskedFill: /, /bool/, /float32/);
fails('requiresGrad on int64', () => long([1]).requiresGrad_(true), DtypeError, /^setRequiresGrad: /, /floating point/);
fails('quantile of int64', () => long([1, 2]).quantile(0.5), DtypeError, /^quantile: /, /float or double/);

// ---- arguments out of range ------------------------------------------------------------------------------
fails('sum: dim out of range', () => zeros([2, 3]).sum(2), ArgumentError, /^sum: /, /\[-2, 1\]/, /got 2/);
fails('softmax: dim out of range', () => F.softmax(zeros([2, 3]), 3), ArgumentError, /^softmax: /, /got 3/);
fails('transpose: dim out of range', () => zeros([2, 3]).transpose(0, 5), ArgumentError, /^transpose: /, /got 5/);
fails('narrow: dim out of range', () => zeros([2, 3]).narrow(4, 0, 1), ArgumentError, /^narrow: /, /got 4/);
fails('narrow: start + length past the end', () => zeros([2, 3]).narrow(1, 2, 2), ArgumentError, /^narrow: /, /start \(2\) \+ length \(2\)/);
fails('indexSelect: index out of range', () => zeros([2, 3]).indexSelect(0, long([0, 3])), ArgumentError, /^indexSelect: /, /out of range/);
fails('gather: index out of range', () => zeros([2, 3]).gather(1, long([[0, 5]])), ArgumentError, /^gather: /, /index 5/, /size 3/);
fails('scatter: index out of range', () => zeros([2, 3]).scatter(1, long([[0, 7]]), 1.5), ArgumentError, /^scatter: /, /index 7/);
fails('select: index out of range', () => zeros([2, 3]).select(1, 5), ArgumentError, /^select: /, /index 5/);
fails('crossEntropy: target class out of range', () => F.crossEntropy(zeros([2, 3]), long([0, 5])), ArgumentError, /^crossEntropy: /, /Target 5/);
fails('oneHot: class beyond numClasses', () => F.oneHot(long([0, 5]), 3), ArgumentError, /^oneHot: /, /num_classes/);
fails('topk: k larger than the dim', () => zeros([3]).topk(5), ArgumentError, /^topk: /, /k out of range/);
fails('quantile: q outside [0, 1]', () => zeros([3]).quantile(1.5), ArgumentError, /^quantile: /, /1\.5/);
fails('dropout: p outside [0, 1]', () => F.dropout(zeros([2]), 1.5), ArgumentError, /^dropout: /, /1\.5/);
fails('randint: empty range', () => randint(5, 2, [3]), ArgumentError, /^randint: /, /\(2\).*\(5\)/);
fails('arange: zero step', () => arange(0, 1, 0), ArgumentError, /^arange: /, /step/);
fails('linspace: negative steps', () => linspace(0, 1, -2), ArgumentError, /^linspace: /, /non-negative/);
fails('pad: odd pad list', () => F.pad(zeros([2]), [1]), ArgumentError, /^pad: /, /even/);
fails('mseLoss: unknown reduction', () => F.mseLoss(zeros([2]), zeros([2]), 'avg' as never), ArgumentError, /^mseLoss: /, /'avg'/);
fails('gridSample: unknown mode', () => F.gridSample(zeros([1, 1, 2, 2]), zeros([1, 2, 2, 2]), { mode: 'cubic' as never }), ArgumentError, /^gridSample: /, /'cubic'/);
fails('size: dim out of range', () => zeros([2]).size(3), ArgumentError, /^size: /, /dim 3/);
fails('manualSeed: negative seed', () => manualSeed(-1), ArgumentError, /^manualSeed: /, /-1/);
fails('setNumThreads: zero', () => setNumThreads(0), ArgumentError, /^setNumThreads: /, /got 0/);
fails('bad device in a factory', () => zeros([2], { device: 'tpu' }), ArgumentError, /'tpu'/, /cpu, cuda/);
fails('bad device in to()', () => zeros([2]).to('float32', 'tpu:0'), ArgumentError, /'tpu:0'/);

// ---- disposed tensors, autograd misuse ----------------------------------------------------------------------
fails('disposed tensor reused', () => { const t = zeros([2, 3]); void t.shape; t.dispose(); return t.add(1); }, DisposedTensorError, /after dispose/, /\[2,3\]/);
fails('disposed tensor as an argument', () => { const t = zeros([2]); t.dispose(); return zeros([2]).mul(t); }, DisposedTensorError, /after dispose/);
fails('disposed tensor in a list', () => { const t = zeros([2]); t.dispose(); return cat([zeros([2]), t]); }, DisposedTensorError, /after dispose/);
fails('backward through a graph-less tensor', () => zeros([1]).mul(2).backward(), EngineError, /^backward: /, /does not require grad/);
fails('grad of an unused input', () => { const a = zeros([2], { requiresGrad: true }), b = zeros([2], { requiresGrad: true }); return grad(a.sum(), [b]); },
  EngineError, /^autogradGrad: /, /allow_unused/);

// ---- safetensors files ----------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'topiary-errors-'));
function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
/** A file of `header` (as JSON) and `data` bytes, with a correct 8-byte length prefix unless given. */
function st(header: unknown, data = Buffer.alloc(0), headerLength?: bigint): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}
const f32x6 = { a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] } };
const stFail = (name: string, bytes: Buffer, ...patterns: RegExp[]): void => {
  const p = file(`${name.replace(/\W+/g, '_')}.safetensors`, bytes);
  fails(`safetensors: ${name}`, () => loadSafetensors(p), SerializationError, new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), ...patterns);
};
stFail('truncated to 5 bytes', st(f32x6, Buffer.alloc(24)).subarray(0, 5), /5 bytes/, /truncated/);
stFail('data truncated', st(f32x6, Buffer.alloc(10)), /ends at byte 24/, /10-byte/);
stFail('implausible header length', st(f32x6, Buffer.alloc(24), 1n << 40n), /header length 1099511627776/);
stFail('header length past the end', st(f32x6, Buffer.alloc(24), 500n), /header of 500 bytes/);
stFail('non-JSON header', st('{"a": {dtype', Buffer.alloc(24)), /not JSON/);
stFail('header is a JSON array', st([1, 2], Buffer.alloc(0)), /not a JSON object/);
stFail('offsets past the end', st({ a: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, Buffer.alloc(8)), /ends at byte 24/);
stFail('unknown dtype', st({ a: { dtype: 'F8', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2)), /unknown dtype "F8"/);
stFail('wrong byte count', st({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, Buffer.alloc(24)), /needs 24 bytes/, /offsets give 20/);
stFail('negative shape', st({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /bad shape \[-1\]/);
stFail('reversed offsets', st({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, Buffer.alloc(4)), /bad data_offsets \[4,0\]/);
fails('safetensors: missing file', () => loadSafetensors(join(dir, 'nope.safetensors')), SerializationError, /nope\.safetensors/, /ENOENT/);

test('a bad tensor late in a safetensors file frees the ones already read', () => {
  const before = memory().tensors;
  const good = tidy(() => encodeSafetensors({ a: ones([3]) }));
  const header = JSON.parse(good.subarray(8, 8 + Number(good.readBigUInt64LE(0))).toString()) as Record<string, unknown>;
  header.b = { dtype: 'F32', shape: [4], data_offsets: [0, 99] };
  assert.throws(() => decodeSafetensors(st(header, Buffer.alloc(12))), SerializationError);
  assert.equal(memory().tensors, before);
});

test('every error class carries its stable code', () => {
  const codes = [
    [new ShapeError('x'), 'SHAPE_ERROR'], [new DtypeError('x'), 'DTYPE_ERROR'], [new ArgumentError('x'), 'ARGUMENT_ERROR'],
    [new DisposedTensorError('x'), 'DISPOSED_TENSOR'], [new SerializationError('x'), 'SERIALIZATION_ERROR'], [new EngineError('x'), 'ENGINE_ERROR'],
  ] as const;
  for (const [e, code] of codes) {
    assert.equal(e.code, code);
    assert.equal(e.name, e.constructor.name);
    assert.ok(e instanceof Error && e instanceof TopiaryError);
  }
});

test('the process lives on: after all the errors an op still works, and nothing leaked', () => {
  rmSync(dir, { recursive: true, force: true });
  assert.ok(count >= 30, `only ${count} error cases ran`);
  const y = tidy(() => F.linear(tensor([[1, 2, 3]]), tensor([[1, 0, -1], [0.5, 0.5, 0.5]]), tensor([10, 20])));
  assert.deepEqual(y.toArray(), [[8, 23]]);
  y.dispose();
  assert.equal(memory().tensors, startTensors);
});
