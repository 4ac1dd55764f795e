#!/usr/bin/env node
// Tells binding.gyp where libtorch is: $LIBTORCH (an official build, CPU or CUDA) or Debian's libtorch-dev.
// `node scripts/torch-paths.mjs include|libdirs|libs|check`. Prints one clear message when none is found.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

function find() {
  const env = process.env.LIBTORCH;
  if (env) {
    const inc = [join(env, 'include'), join(env, 'include/torch/csrc/api/include')];
    if (!existsSync(join(inc[0], 'ATen/ATen.h'))) {
      fail(`LIBTORCH=${env} does not look like a libtorch folder (no include/ATen/ATen.h). ` +
        'Point it at an unpacked official libtorch build, or unset it to use Debian\'s libtorch-dev.');
    }
    const lib = join(env, 'lib');
    const names = existsSync(lib) ? readdirSync(lib) : [];
    const libs = ['torch', 'torch_cpu', 'c10'];
    const cuda = names.includes('libtorch_cuda.so');
    if (cuda) libs.push('torch_cuda', 'c10_cuda');
    return { inc, libdirs: [lib], libs, cuda };
  }
  const sys = '/usr/include/torch/csrc/api/include/torch/torch.h';
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'];
  const libdir = multiarch.find((d) => existsSync(join(d, 'libtorch_cpu.so')));
  if (!existsSync(sys) || !libdir) {
    fail('libtorch was not found. Install it with `sudo apt-get install libtorch-dev libopenblas0-pthread` ' +
      '(Debian/Ubuntu), or set LIBTORCH to the folder of an official libtorch build (https://pytorch.org), then rebuild ' +
      'with `npm run build:native`.');
  }
  return { inc: ['/usr/include', '/usr/include/torch/csrc/api/include'], libdirs: [libdir], libs: ['torch', 'torch_cpu', 'c10'], cuda: false };
}

function fail(msg) {
  process.stderr.write(`\ntopiary: ${msg}\n\n`);
  process.exit(1);
}

const t = find();
const what = process.argv[2] ?? 'check';
if (what === 'include') console.log(t.inc.join(' '));
else if (what === 'libdirs') console.log(t.libdirs.map((d) => `-L${d} -Wl,-rpath,${d}`).join(' '));
else if (what === 'libs') console.log((t.cuda ? '-Wl,--no-as-needed ' : '') + t.libs.map((l) => `-l${l}`).join(' ') + (t.cuda ? ' -Wl,--as-needed' : ''));
else if (what === 'cuda') console.log(t.cuda ? '1' : '0');
else console.log(JSON.stringify(t));
