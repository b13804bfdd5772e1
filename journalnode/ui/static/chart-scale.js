// How tall a chart's y axis is. One spike (a restarted node catching up thousands of txids in a second)
// would flatten every other line to the floor: when the largest value is far above the bulk of them, the
// axis ends a little above the bulk and the spike runs off the top (the legend still shows its value).
// A plain script (no module) so the page loads it before dashboard.js and a test can evaluate it.

/** The top of the y axis for these values (nulls are gaps): their maximum, unless a spike dwarfs the rest. */
// biome-ignore lint/correctness/noUnusedVariables: a global of the page, called by dashboard.js
function yAxisTop(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0).sort((a, b) => a - b);
  if (xs.length === 0) return 1;
  const max = xs[xs.length - 1];
  const p90 = xs[Math.min(xs.length - 1, Math.floor(0.9 * xs.length))];
  // A spike: the maximum is more than four times the 90th percentile (and there is a bulk to show).
  if (xs.length >= 10 && p90 > 0 && max > 4 * p90) return 2 * p90;
  return max > 0 ? max * 1.05 : 1;
}
