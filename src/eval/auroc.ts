/**
 * AUROC = P(score of a random positive > score of a random negative) + ½ P(equal)
 *       = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋),
 * with R₊ the sum of the positives' ranks among all scores, tied scores taking their average rank
 * (the Mann–Whitney U statistic). NaN without both classes.
 */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<boolean>, indices: ArrayLike<number>): number {
  const order = Array.from(indices).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSum = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && scores[order[end + 1]] === scores[order[start]]) end++;
    const averageRank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (positive[order[k]]) {
        nPos++;
        rankSum += averageRank;
      }
    }
    start = end + 1;
  }
  const nNeg = order.length - nPos;
  if (!nPos || !nNeg) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
