/**
 * The BatchNorm layers that candidate evaluation recalibrates, whatever the model is made of: the
 * BatchNorm modules of a zoo model, or the batchNorm nodes of a GraphModule (a model imported from
 * ONNX runs its graph; its statistics are buffers named by the node's inputs, its momentum a node
 * attribute). Calibration mode puts the statistics in training mode and nothing else: a zoo model
 * runs in eval mode with only its BatchNorm modules training; a graph runs in training mode with its
 * dropout nodes' rates set to 0 for the pass (restored afterwards).
 */
import { GraphModule } from '../../graph/run.js';
import { BatchNorm } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import type { Tensor } from '../../tensor/tensor.js';

export interface NormLayer {
  /** running_mean, running_var and (when there is one) num_batches_tracked. */
  buffers: Tensor[];
  setMomentum(m: number): void;
}

export interface Norms {
  layers: NormLayer[];
  /** Calibration mode on; the function returned puts the model (and every momentum) back as it was. */
  enter(): () => void;
}

export function normsOf(model: Module): Norms {
  return model instanceof GraphModule ? graphNorms(model) : moduleNorms(model);
}

function moduleNorms(model: Module): Norms {
  const bns = model.modules().filter((m): m is BatchNorm => m instanceof BatchNorm);
  const layers = bns.map((bn) => {
    const bufs = new Map(bn.namedBuffers());
    return {
      buffers: ['running_mean', 'running_var', 'num_batches_tracked'].map((n) => bufs.get(n)!),
      // BatchNorm.momentum is readonly to users; recalibration alone needs to vary it per batch.
      setMomentum: (m: number) => { (bn as unknown as { momentum: number }).momentum = m; },
    };
  });
  return {
    layers,
    enter: () => {
      const was = model.training, moms = bns.map((bn) => bn.momentum);
      model.eval();
      for (const bn of bns) bn.training = true;
      return () => {
        bns.forEach((bn, i) => { (bn as unknown as { momentum: number }).momentum = moms[i]; });
        model.train(was);
      };
    },
  };
}

function graphNorms(model: GraphModule): Norms {
  const sd = model.stateDict();
  const nodes = model.graph.find('batchNorm').filter((n) => n.inputs[3] && n.inputs[4] && sd[n.inputs[3].name] && sd[n.inputs[4].name]);
  const layers = nodes.map((n) => {
    const mean = n.inputs[3]!.name;
    const nbt = mean.endsWith('running_mean') ? sd[mean.slice(0, -'running_mean'.length) + 'num_batches_tracked'] : undefined;
    return {
      buffers: [sd[mean], sd[n.inputs[4]!.name], ...(nbt ? [nbt] : [])],
      setMomentum: (m: number) => { n.attrs.momentum = m; },
    };
  });
  const drops = model.graph.find('dropout');
  return {
    layers,
    enter: () => {
      const was = model.training;
      const moms = nodes.map((n) => (Object.hasOwn(n.attrs, 'momentum') ? n.attrs.momentum : undefined));
      const ps = drops.map((n) => n.attrs.p);
      for (const n of drops) n.attrs.p = 0;
      model.train();
      return () => {
        nodes.forEach((n, i) => { if (moms[i] === undefined) delete n.attrs.momentum; else n.attrs.momentum = moms[i]; });
        drops.forEach((n, i) => { n.attrs.p = ps[i]; });
        model.train(was);
      };
    },
  };
}
