/**
 * Convolution-gradient kernels for the wasm backend, composed from its fast kernels (Transpose,
 * PadV2, Reverse, Conv2D on XNNPACK). tfjs-backend-wasm has no Conv2DBackpropFilter at all, and
 * its Conv2DBackpropInput runs ~9× slower than the forward convolution. Registering them at
 * kernel level covers every path that needs them — including tf.layers' fused convolutions,
 * whose gradients do not go through the gradient registry (fast-gradients.ts).
 * Only stride 1, dilation 1, NHWC, 'same'/'valid' are fast-pathed; otherwise the original
 * Conv2DBackpropInput runs and Conv2DBackpropFilter throws (as before).
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
interface Ctx {
  backend: tf.KernelBackend;
  temps: Info[];
}

function run(ctx: Ctx, name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>): Info {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  const out = k.kernelFunc({ inputs, backend: ctx.backend, attrs: attrs as tf.NamedAttrMap }) as Info;
  ctx.temps.push(out);
  return out;
}

function finish(ctx: Ctx, out: Info): Info {
  for (const t of ctx.temps) if (t !== out) ctx.backend.disposeData(t.dataId);
  return out;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dilations?: number | [number, number];
}

const pair = (v: number | [number, number] | undefined) => (v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v);

function simple(a: ConvAttrs): a is ConvAttrs & { pad: 'same' | 'valid' } {
  const [sh, sw] = pair(a.strides);
  const [dh, dw] = pair(a.dilations);
  return sh === 1 && sw === 1 && dh === 1 && dw === 1 && (a.dataFormat ?? 'NHWC') === 'NHWC' && (a.pad === 'same' || a.pad === 'valid');
}

function pads(k: number, pad: 'same' | 'valid'): [number, number] {
  if (pad === 'valid') return [0, 0];
  const before = Math.floor((k - 1) / 2);
  return [before, k - 1 - before];
}

let installed: Promise<void> | undefined;

/**
 * Registers the wasm convolution-gradient kernels (idempotent). Loads the wasm package first:
 * its import registers the stock kernels, which would otherwise overwrite ours later.
 */
export function installWasmConvKernels(): Promise<void> {
  installed ??= import('@tensorflow/tfjs-backend-wasm').then(register, register);
  return installed;
}

function register(): void {
  const filterOrig = tf.getKernel('Conv2DBackpropFilter', 'wasm');
  if (filterOrig) tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
      if (!simple(a)) {
        if (filterOrig) return filterOrig.kernelFunc({ inputs, backend, attrs });
        throw new Error('Conv2DBackpropFilter on wasm supports stride 1, dilation 1, NHWC only');
      }
      const ctx: Ctx = { backend: backend as tf.KernelBackend, temps: [] };
      const [kh, kw] = a.filterShape;
      const [pt, pb] = pads(kh, a.pad);
      const [pl, pr] = pads(kw, a.pad);
      let x = inputs.x as Info;
      if (a.pad === 'same') x = run(ctx, 'PadV2', { x }, { paddings: [[0, 0], [pt, pb], [pl, pr], [0, 0]], constantValue: 0 });
      // dW = valid conv of x with batch and channels swapped, by dy as the kernel.
      const xs = run(ctx, 'Transpose', { x }, { perm: [3, 1, 2, 0] });
      const ds = run(ctx, 'Transpose', { x: inputs.dy as Info }, { perm: [1, 2, 0, 3] });
      const r = run(ctx, 'Conv2D', { x: xs, filter: ds }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] });
      return finish(ctx, run(ctx, 'Transpose', { x: r }, { perm: [1, 2, 0, 3] }));
    },
  });

  const inputOrig = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (inputOrig) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as ConvAttrs;
      if (!simple(a)) {
        if (inputOrig) return inputOrig.kernelFunc({ inputs, backend, attrs });
        throw new Error('Conv2DBackpropInput on wasm: kernel missing');
      }
      const ctx: Ctx = { backend: backend as tf.KernelBackend, temps: [] };
      const w = inputs.filter as Info;
      const [kh, kw] = w.shape;
      const [pt, pb] = pads(kh, a.pad);
      const [pl, pr] = pads(kw, a.pad);
      // dx = valid conv of dy (padded by k-1-before, k-1-after) with the kernel flipped in
      // space and its channels swapped.
      const wr = run(ctx, 'Reverse', { x: w }, { dims: [0, 1] });
      const wf = run(ctx, 'Transpose', { x: wr }, { perm: [0, 1, 3, 2] });
      const dyp = run(ctx, 'PadV2', { x: inputs.dy as Info }, { paddings: [[0, 0], [kh - 1 - pt, kh - 1 - pb], [kw - 1 - pl, kw - 1 - pr], [0, 0]], constantValue: 0 });
      return finish(ctx, run(ctx, 'Conv2D', { x: dyp, filter: wf }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] }));
    },
  });
}
