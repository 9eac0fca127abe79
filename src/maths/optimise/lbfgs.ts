/**
 * L-BFGS (two-loop recursion, history 10) with a strong-Wolfe line search (Nocedal & Wright, Algorithms
 * 3.5–3.6, cubic interpolation), for a smooth objective given as f and its gradient. Pure, and
 * deterministic: every operation is in a fixed order.
 *
 * The state outlives one run so that a second run can continue the first's iterate and curvature pairs
 * with a more precise objective: logistic.ts runs float32 products, then float64 ones, on one state.
 */

/** f at θ; `grad` (same length as θ) is overwritten with ∇f. */
export type Objective = (theta: Float64Array, grad: Float64Array) => Promise<number>;

/** History length: 10, as scipy's L-BFGS-B that scikit-learn calls. */
const HISTORY = 10;

/** The optimiser's iterate, its f and gradient, and its curvature pairs. */
export interface LbfgsState {
  theta: Float64Array;
  grad: Float64Array;
  f: number;
  s: Float64Array[];
  y: Float64Array[];
  rho: number[];
  iterations: number;
  /** The gradient tolerance, fixed by the first run from its starting gradient. */
  tol?: number;
}

export function newLbfgsState(size: number): LbfgsState {
  return { theta: new Float64Array(size), grad: new Float64Array(size), f: NaN, s: [], y: [], rho: [], iterations: 0 };
}

/**
 * L-BFGS iterations on `state` with `objective` until max |gradient| ≤ tol (state.tol, or
 * `tolerance` of the starting max |gradient| in the first run) or the relative
 * decrease falls below 64·ε (true), or the line search can make no progress or state.iterations reaches
 * maxIter (false).
 */
export async function lbfgs(objective: Objective, state: LbfgsState, tolerance: (startGrad: number) => number, maxIter: number): Promise<boolean> {
  const { theta, grad, s, y: yv, rho } = state;
  const size = theta.length;
  state.f = await objective(theta, grad);
  const tol = (state.tol ??= tolerance(maxAbs(grad)));
  const dir = new Float64Array(size);
  const alphas = new Float64Array(HISTORY);
  const trial = new Float64Array(size);
  const trialGrad = new Float64Array(size);
  if (maxAbs(grad) <= tol) return true;

  while (state.iterations < maxIter) {
    // Two-loop recursion: dir = −H·grad, H the L-BFGS inverse-Hessian estimate scaled by sᵀy/yᵀy.
    dir.set(grad);
    for (let h = s.length - 1; h >= 0; h--) {
      const a = rho[h]! * dot(s[h]!, dir);
      alphas[h] = a;
      axpy(-a, yv[h]!, dir);
    }
    if (s.length > 0) {
      const last = s.length - 1;
      scaleInPlace(dir, dot(s[last]!, yv[last]!) / dot(yv[last]!, yv[last]!));
    }
    for (let h = 0; h < s.length; h++) {
      const beta = rho[h]! * dot(yv[h]!, dir);
      axpy(alphas[h]! - beta, s[h]!, dir);
    }
    scaleInPlace(dir, -1);
    let slope = dot(grad, dir);
    if (!(slope < 0)) {
      // Rounding can spoil the estimate; restart from steepest descent rather than climb.
      s.length = 0;
      yv.length = 0;
      rho.length = 0;
      dir.set(grad);
      scaleInPlace(dir, -1);
      slope = dot(grad, dir);
    }
    // The first step has no curvature estimate: a unit-length move, as scipy's first step does.
    const step0 = s.length === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    const evaluate = async (alpha: number): Promise<{ f: number; slope: number }> => {
      for (let t = 0; t < size; t++) trial[t] = theta[t]! + alpha * dir[t]!;
      const ft = await objective(trial, trialGrad);
      return { f: ft, slope: dot(trialGrad, dir) };
    };
    const accepted = await strongWolfe(evaluate, state.f, slope, step0);
    if (accepted === undefined) return false;
    if (accepted.alpha !== accepted.lastAlpha) await evaluate(accepted.alpha);
    const fNew = accepted.f;
    const sNew = new Float64Array(size);
    const yNew = new Float64Array(size);
    for (let t = 0; t < size; t++) {
      sNew[t] = trial[t]! - theta[t]!;
      yNew[t] = trialGrad[t]! - grad[t]!;
    }
    theta.set(trial);
    grad.set(trialGrad);
    state.iterations++;
    const sy = dot(sNew, yNew);
    // Strong Wolfe guarantees sᵀy > 0 in exact arithmetic; skip a pair rounding has made useless.
    if (sy > 1e-300) {
      if (s.length === HISTORY) {
        s.shift();
        yv.shift();
        rho.shift();
      }
      s.push(sNew);
      yv.push(yNew);
      rho.push(1 / sy);
    }
    const fOld = state.f;
    state.f = fNew;
    if (maxAbs(grad) <= tol) return true;
    // scipy's factr test as scikit-learn sets it (ftol = 64·ε): no relative progress left to make, which
    // scipy reports as convergence.
    if ((fOld - fNew) / Math.max(Math.abs(fOld), Math.abs(fNew), 1) <= 64 * Number.EPSILON) return true;
  }
  return false;
}

interface Accepted {
  alpha: number;
  f: number;
  /** The last α evaluated: the trial buffers hold it, so the caller re-evaluates only if it differs. */
  lastAlpha: number;
}

const C1 = 1e-4;
const C2 = 0.9;
const MAX_BRACKET = 30;
const MAX_ZOOM = 30;

/** f and its slope along the search direction at step α. */
type LineFunction = (alpha: number) => Promise<{ f: number; slope: number }>;

/** Strong-Wolfe step along a descent direction; undefined when no step decreases f (at rounding level). */
async function strongWolfe(phi: LineFunction, f0: number, g0: number, alpha1: number): Promise<Accepted | undefined> {
  let last = 0;
  const at = (alpha: number) => {
    last = alpha;
    return phi(alpha);
  };
  let aPrev = 0;
  let fPrev = f0;
  let gPrev = g0;
  let alpha = alpha1;
  for (let i = 0; i < MAX_BRACKET; i++) {
    const { f, slope } = await at(alpha);
    if (!Number.isFinite(f) || f > f0 + C1 * alpha * g0 || (i > 0 && f >= fPrev)) {
      return zoom(at, f0, g0, aPrev, fPrev, gPrev, alpha, f, slope, () => last);
    }
    if (Math.abs(slope) <= -C2 * g0) return { alpha, f, lastAlpha: last };
    if (slope >= 0) return zoom(at, f0, g0, alpha, f, slope, aPrev, fPrev, gPrev, () => last);
    aPrev = alpha;
    fPrev = f;
    gPrev = slope;
    alpha *= 2;
  }
  return { alpha: aPrev, f: fPrev, lastAlpha: last };
}

async function zoom(
  at: LineFunction,
  f0: number,
  g0: number,
  lo: number,
  fLo: number,
  gLo: number,
  hi: number,
  fHi: number,
  gHi: number,
  last: () => number,
): Promise<Accepted | undefined> {
  for (let j = 0; j < MAX_ZOOM; j++) {
    const a = interpolate(lo, fLo, gLo, hi, fHi, gHi);
    const { f, slope } = await at(a);
    if (!Number.isFinite(f) || f > f0 + C1 * a * g0 || f >= fLo) {
      hi = a;
      fHi = f;
      gHi = slope;
    } else {
      if (Math.abs(slope) <= -C2 * g0) return { alpha: a, f, lastAlpha: last() };
      if (slope * (hi - lo) >= 0) {
        hi = lo;
        fHi = fLo;
        gHi = gLo;
      }
      lo = a;
      fLo = f;
      gLo = slope;
    }
    if (Math.abs(hi - lo) <= 1e-16 * Math.max(1, Math.abs(lo))) break;
  }
  // lo always satisfies sufficient decrease; α = 0 means no decreasing step exists at this precision.
  return lo > 0 ? { alpha: lo, f: fLo, lastAlpha: last() } : undefined;
}

/** Minimiser of the cubic through both ends' values and slopes, kept inside the middle 80% (else bisection). */
function interpolate(lo: number, fLo: number, gLo: number, hi: number, fHi: number, gHi: number): number {
  const lower = Math.min(lo, hi);
  const width = Math.abs(hi - lo);
  if (Number.isFinite(fHi) && Number.isFinite(gHi)) {
    const d1 = gLo + gHi - (3 * (fLo - fHi)) / (lo - hi);
    const disc = d1 * d1 - gLo * gHi;
    if (disc >= 0) {
      const d2 = Math.sign(hi - lo) * Math.sqrt(disc);
      const a = hi - ((hi - lo) * (gHi + d2 - d1)) / (gHi - gLo + 2 * d2);
      if (Number.isFinite(a) && a >= lower + 0.1 * width && a <= lower + 0.9 * width) return a;
    }
  }
  return (lo + hi) / 2;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += a * x[i]!;
}

function scaleInPlace(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i]! *= a;
}

function maxAbs(x: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}
