/**
 * Brent's bounded minimisation of a function of one variable: golden-section steps with parabolic
 * interpolation where it is acceptable, a port of scipy's `minimize_scalar(method="bounded")`
 * (`_minimize_scalar_bounded`, i.e. fminbound). GCD estimates the number of classes with it (Vaze et
 * al. 2022, estimate_k.py). Pure; the tests hold the sequence of evaluated points to scipy's.
 */
import { ClipOodError } from "../../errors.js";

export interface BoundedMinimum {
  /** The point with the least value seen. */
  x: number;
  fx: number;
  /** Every evaluated point with its value, in evaluation order. */
  evaluations: { x: number; fx: number }[];
  /** false when `maxEvaluations` ran out first. */
  converged: boolean;
}

/** scipy's defaults: xatol 1e-5, maxiter (= function evaluations) 500. */
export function minimizeBounded(f: (x: number) => number, lower: number, upper: number, options: { xatol?: number; maxEvaluations?: number } = {}): BoundedMinimum {
  if (!Number.isFinite(lower) || !Number.isFinite(upper) || lower > upper) {
    throw new ClipOodError("USAGE", `bounded minimisation: bounds [${lower}, ${upper}] are not a finite interval`, { hint: "give lower ≤ upper" });
  }
  const xatol = options.xatol ?? 1e-5;
  const maxfun = options.maxEvaluations ?? 500;
  const evaluations: { x: number; fx: number }[] = [];
  const call = (x: number) => {
    const fx = f(x);
    evaluations.push({ x, fx });
    return fx;
  };
  const sqrtEps = Math.sqrt(2.2e-16);
  const goldenMean = 0.5 * (3 - Math.sqrt(5));
  let a = lower;
  let b = upper;
  let fulc = a + goldenMean * (b - a);
  let nfc = fulc;
  let xf = fulc;
  let rat = 0;
  let e = 0;
  let x = xf;
  let fx = call(x);
  let num = 1;
  let ffulc = fx;
  let fnfc = fx;
  let xm = 0.5 * (a + b);
  let tol1 = sqrtEps * Math.abs(xf) + xatol / 3;
  let tol2 = 2 * tol1;
  let converged = true;
  const sign = (v: number) => (v > 0 ? 1 : v < 0 ? -1 : 0);
  while (Math.abs(xf - xm) > tol2 - 0.5 * (b - a)) {
    let golden = true;
    if (Math.abs(e) > tol1) {
      golden = false;
      let r = (xf - nfc) * (fx - ffulc);
      let q = (xf - fulc) * (fx - fnfc);
      let p = (xf - fulc) * q - (xf - nfc) * r;
      q = 2 * (q - r);
      if (q > 0) p = -p;
      q = Math.abs(q);
      r = e;
      e = rat;
      if (Math.abs(p) < Math.abs(0.5 * q * r) && p > q * (a - xf) && p < q * (b - xf)) {
        rat = p / q;
        x = xf + rat;
        if (x - a < tol2 || b - x < tol2) rat = tol1 * (sign(xm - xf) + (xm - xf === 0 ? 1 : 0));
      } else golden = true;
    }
    if (golden) {
      e = xf >= xm ? a - xf : b - xf;
      rat = goldenMean * e;
    }
    x = xf + (sign(rat) + (rat === 0 ? 1 : 0)) * Math.max(Math.abs(rat), tol1);
    const fu = call(x);
    num++;
    if (fu <= fx) {
      if (x >= xf) a = xf;
      else b = xf;
      fulc = nfc;
      ffulc = fnfc;
      nfc = xf;
      fnfc = fx;
      xf = x;
      fx = fu;
    } else {
      if (x < xf) a = x;
      else b = x;
      if (fu <= fnfc || nfc === xf) {
        fulc = nfc;
        ffulc = fnfc;
        nfc = x;
        fnfc = fu;
      } else if (fu <= ffulc || fulc === xf || fulc === nfc) {
        fulc = x;
        ffulc = fu;
      }
    }
    xm = 0.5 * (a + b);
    tol1 = sqrtEps * Math.abs(xf) + xatol / 3;
    tol2 = 2 * tol1;
    if (num >= maxfun) {
      converged = false;
      break;
    }
  }
  return { x: xf, fx, evaluations, converged };
}
