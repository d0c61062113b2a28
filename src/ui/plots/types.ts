/** One point of a training or metric curve. */
export interface CurvePoint {
  series: string;
  x: number;
  y: number;
}
