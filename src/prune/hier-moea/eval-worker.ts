/**
 * One evaluation worker of EvalPool (eval-pool.ts): the model rebuilt once (from the registry by
 * name, or from the graph the pool sent for an imported model: model-source.ts) with the dense
 * state dict, the validation subset and calibration inputs decoded once, then one
 * MaskedEvaluator scoring whatever masks arrive. Every error goes back as a message naming its
 * class; nothing here is left to hang.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getNumThreads, setNumThreads } from '../../core/runtime.js';
import { decodeSafetensors } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { EvalRequest, WorkerInit, WorkerMessage } from './eval-pool.js';
import { MaskedEvaluator } from './evaluator.js';
import { PrunableLayout } from './layout.js';
import { buildModel } from './model-source.js';

const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const describe = (e: unknown) => (e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) });

function setup(init: WorkerInit): MaskedEvaluator {
  // First thing: this thread's OpenMP count (at::set_num_threads reaches the calling thread only).
  setNumThreads(init.threads);
  const state = decodeSafetensors(init.state, 'dense state dict');
  let model;
  try {
    model = buildModel(init, state.tensors);
  } finally {
    for (const t of Object.values(state.tensors)) t.dispose();
  }
  const layout = new PrunableLayout(model);
  const mine = layout.names.map((n, l) => `${n}:${layout.sizes[l]}`).join(', ');
  const theirs = init.layers.map((l) => `${l.name}:${l.size}`).join(', ');
  if (mine !== theirs) throw new Error(`the rebuilt '${init.model}' has prunable layers [${mine}], the main thread's model [${theirs}]`);
  const { tensors } = decodeSafetensors(init.data, 'evaluation data');
  const get = (k: string): Tensor => {
    const t = tensors[k];
    if (!t) throw new Error(`evaluation data: '${k}' is missing`);
    return t;
  };
  const val = Array.from({ length: init.nVal }, (_, i) => ({ x: get(`val.${i}.x`), y: get(`val.${i}.y`) }));
  const calib = Array.from({ length: init.nCalib }, (_, i) => get(`calib.${i}`));
  return new MaskedEvaluator(model, layout, { val, calib }, { structure: init.structure });
}

let ev: MaskedEvaluator;
try {
  ev = setup(workerData as WorkerInit);
} catch (e) {
  post({ type: 'fatal', ...describe(e) });
  process.exit(1);
}

port.on('message', (m: EvalRequest) => {
  try {
    post({ type: 'result', id: m.id, result: ev.evaluate(m.masks, m.maxWrong) });
  } catch (e) {
    post({ type: 'failed', id: m.id, ...describe(e) });
  }
});
post({ type: 'ready', threads: getNumThreads() });
