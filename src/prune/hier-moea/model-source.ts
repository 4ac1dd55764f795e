/**
 * Where an evaluation worker (a thread of EvalPool, or a `topiary worker` of the queue) gets its
 * model: a zoo model rebuilt from the registry by name, or, for a model that is not in the zoo
 * (imported from ONNX, or any GraphModule), the graph itself as plain JSON (graph.toJSON(): ops,
 * attributes, shapes and constants; parameters by name only). Either way the dense state dict
 * travels beside it as safetensors and is loaded into the rebuilt model, so a worker scores the
 * same network on the same bytes as the main thread.
 */
import { ArgumentError } from '../../core/errors.js';
import type { GraphJSON } from '../../graph/ir.js';
import { graphFromJSONWithData, GraphModule } from '../../graph/run.js';
import { createModel } from '../../models/registry.js';
import type { ModelConfig } from '../../models/types.js';
import type { Module } from '../../nn/module.js';
import type { Tensor } from '../../tensor/tensor.js';

export interface ModelSource {
  /** The registered model name (or 'onnx' for an imported one: then `graph` is given). */
  model: string;
  /** createModel's options (for a graph: the input shape and classes, for the record). */
  config: ModelConfig;
  /** The model's graph when it is not a zoo model: the worker runs this graph. */
  graph?: GraphJSON;
}

/** The graph to send for `model` when it is a GraphModule (an imported or shrunk model), else undefined. */
export function graphOf(model: Module): GraphJSON | undefined {
  return model instanceof GraphModule ? model.graph.toJSON() : undefined;
}

/** The model of `src` with `state` loaded (the caller keeps and frees `state`). */
export function buildModel(src: ModelSource, state: Record<string, Tensor>): Module {
  if (src.graph) {
    let g;
    try {
      g = graphFromJSONWithData(src.graph);
    } catch (e) {
      throw new ArgumentError(`model '${src.model}': its graph could not be read (${(e as Error).message})`, { cause: e });
    }
    try {
      return new GraphModule(g, state);
    } catch (e) {
      g.dispose();
      throw e;
    }
  }
  const model = createModel(src.model, src.config);
  try {
    model.loadStateDict(state);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
