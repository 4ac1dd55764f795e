/** The model registry: keys appear in the CLI, recipes and run hashes, so they never change once released. */
import { RegistryError } from '../core/errors.js';
import { initWeight, INIT_NAMES, type InitName } from '../nn/init.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { lenet5, vgg19, vggLike } from './conv.js';
import { lenet300100, mlp } from './mlp.js';
import { resnet110, resnet18, resnet20, resnet32, resnet56 } from './resnet.js';
import type { ModelConfig, ModelSpec } from './types.js';
import { vitTiny } from './vit.js';

export const MODELS: Record<string, ModelSpec> = Object.fromEntries(
  [mlp, lenet300100, lenet5, vggLike, vgg19, resnet18, resnet20, resnet32, resnet56, resnet110, vitTiny].map((m) => [m.name, m]),
);
export const MODEL_NAMES = Object.keys(MODELS);

export function getModel(name: string): ModelSpec {
  const m = MODELS[name];
  if (!m) throw new RegistryError(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
  return m;
}

/** Build a registered model; `init` re-initializes every Linear and Conv2d weight by that scheme. */
export function createModel(name: string, c: ModelConfig): Module {
  const spec = getModel(name);
  if (c.init && !INIT_NAMES.includes(c.init as InitName)) throw new RegistryError(`unknown init '${c.init}' (known: ${INIT_NAMES.join(', ')})`);
  const m = spec.build(c);
  if (c.init && c.init !== 'default') {
    for (const [, mod] of m.namedModules()) {
      if (mod instanceof Linear || mod instanceof Conv2d) initWeight(c.init as InitName, mod.weight, mod.bias);
    }
  }
  return m;
}
