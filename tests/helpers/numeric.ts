/** Numeric helpers for kernel tests: seeded data, tolerant comparison, finite differences. */
import { expect } from 'vitest';
import { Rng } from '../../src/data/rng.ts';

export function randomArray(seed: number, n: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Assert |actual - expected| <= atol + rtol·|expected| elementwise; the failure names the worst index. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${label}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (atol ${tol.atol}, rtol ${tol.rtol})`,
    );
  }
}

/** Max |a - b| over two arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Central finite-difference gradient of a scalar function of `x` (float64): for each i,
 * (f(x + h e_i) - f(x - h e_i)) / 2h.
 */
export function finiteDifferenceGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const point = Float64Array.from(x);
  const grad = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const v = point[i];
    point[i] = v + h;
    const plus = f(point);
    point[i] = v - h;
    const minus = f(point);
    point[i] = v;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

/** Dot product (float64), used to turn a tensor output into a scalar loss for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Assert two arrays are bit-identical (determinism). */
export function expectBitIdentical(a: Float32Array, b: Float32Array, label = ''): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  expect(ua.length, label).toBe(ub.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) expect.fail(`${label}: runs differ at index ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/**
 * Assert |actual − expected| ≤ rtol·bound elementwise, where bound is the size the rounding error
 * scales with (e.g. Σ|terms| of a dot product); the failure names the worst element.
 */
export function expectWithinBound(actual: ArrayLike<number>, expected: ArrayLike<number>, bound: ArrayLike<number>, rtol: number, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  let worst = -1;
  let worstRatio = 1;
  for (let i = 0; i < expected.length; i++) {
    const ratio = Math.abs(actual[i] - expected[i]) / (rtol * bound[i] + Number.MIN_VALUE);
    if (!(ratio <= worstRatio)) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (worst >= 0) {
    expect.fail(`${label}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]}, allowed ±${rtol * bound[worst]} (rtol ${rtol} of bound ${bound[worst]})`);
  }
}
