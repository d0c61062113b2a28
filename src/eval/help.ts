/** What every reported metric means: name, formula and a plain explanation, for the UI and reports. */

export interface MetricHelp {
  name: string;
  formula: string;
  explanation: string;
  /** What the bootstrap resamples for this metric's interval. */
  resampled: string;
}

const BOOT_PAIRS = 'pairs, within each group';

export const METRIC_HELP = {
  cardio_separation: {
    name: 'Cardiology separation',
    formula: 'mean cos(similar pairs) − mean cos(different pairs)',
    explanation: 'How much closer the model puts pairs from the same cardiac disease category than pairs from different categories or organ systems. Higher is better.',
    resampled: BOOT_PAIRS,
  },
  cardio_similar_mean: {
    name: 'Similar pairs: mean cosine',
    formula: '(1/|S|) Σ_{(a,b)∈S} cos(a, b)',
    explanation: 'Average cosine similarity of the similar pairs.',
    resampled: 'similar pairs',
  },
  cardio_different_mean: {
    name: 'Different pairs: mean cosine',
    formula: '(1/|D|) Σ_{(a,b)∈D} cos(a, b)',
    explanation: 'Average cosine similarity of the different pairs.',
    resampled: 'different pairs',
  },
  cardio_auroc: {
    name: 'Cardiology AUROC',
    formula: 'P(cos(similar) > cos(different)) + ½ P(equal)',
    explanation: 'Chance that a random similar pair scores above a random different pair (Mann–Whitney, ties count half). 0.5 = no better than chance, 1 = perfect ranking.',
    resampled: BOOT_PAIRS,
  },
  cardio_pair_accuracy: {
    name: 'Cardiology zero-shot pair accuracy',
    formula: 'test accuracy of [cos ≥ t], t maximising train accuracy',
    explanation: 'Pairs are split (stratified, seeded) into train and test; the cosine threshold that best tells similar from different pairs on train is applied to test.',
    resampled: 'test pairs, within each group (threshold fixed)',
  },
  negation_mean: {
    name: 'Negation pairs: mean cosine',
    formula: '(1/|N|) Σ_{(x, not x)∈N} cos(x, not x)',
    explanation: 'Average cosine between a finding and its negation ("evidence of X" vs "no evidence of X"). Lower means the model hears the "no".',
    resampled: 'negation pairs',
  },
  negation_below_similar: {
    name: 'Negation below paraphrase',
    formula: 'P(cos(negation pair) < cos(similar pair)) + ½ P(equal)',
    explanation: 'How often a negated pair scores below a paraphrase (similar) pair, over all combinations of the two. 1 = every negation below every paraphrase; 0.5 = indistinguishable.',
    resampled: 'negation and similar pairs, within each group',
  },
  kg_separation: {
    name: 'KG separation (gene ↔ disease)',
    formula: 'mean cos(gene, disease | true association) − mean cos(gene, disease | false association)',
    explanation: 'How much closer a gene’s text sits to the diseases it is associated with than to random diseases it is not.',
    resampled: 'associations, within true and false',
  },
  kg_true_mean: {
    name: 'True associations: mean cosine',
    formula: 'mean cos(gene, disease) over true associations',
    explanation: 'Average gene–disease cosine for curated associations.',
    resampled: 'true associations',
  },
  kg_false_mean: {
    name: 'False associations: mean cosine',
    formula: 'mean cos(gene, disease) over false associations',
    explanation: 'Average gene–disease cosine for sampled non-associations.',
    resampled: 'false associations',
  },
  kg_sentence_separation: {
    name: 'KG sentence separation',
    formula: '½(mean cos within true sentences + mean cos within false sentences) − mean cos(true, false sentences)',
    explanation:
      'Association sentences ("G is associated with D"). The CTD paper compares the mean cosine among true-association sentences with that among false ones, which does not say whether the two groups are apart; this score is the mean within-group cosine minus the between-group cosine (both within-group means are reported too). Positive = true and false sentences form separate groups.',
    resampled: 'sentences, within true and false',
  },
  kg_sentence_within_true: {
    name: 'Within true sentences: mean cosine',
    formula: 'mean cos(s, s′) over pairs of distinct true-association sentences',
    explanation: 'Cohesion of the true-association sentences (the paper’s "among true").',
    resampled: 'sentences, within true and false',
  },
  kg_sentence_within_false: {
    name: 'Within false sentences: mean cosine',
    formula: 'mean cos(s, s′) over pairs of distinct false-association sentences',
    explanation: 'Cohesion of the false-association sentences (the paper’s "among false").',
    resampled: 'sentences, within true and false',
  },
  kg_sentence_between: {
    name: 'Between true and false sentences: mean cosine',
    formula: 'mean cos(s, s′), s true, s′ false',
    explanation: 'How similar true- and false-association sentences are to each other. Lower is better.',
    resampled: 'sentences, within true and false',
  },
  kg_auroc: {
    name: 'KG AUROC',
    formula: 'P(cos(gene, disease | true) > cos(gene, disease | false)) + ½ P(equal)',
    explanation: 'Chance that a true association scores above a false one.',
    resampled: 'associations, within true and false',
  },
  kg_pair_accuracy: {
    name: 'KG zero-shot pair accuracy',
    formula: 'test accuracy of [cos(gene, disease) ≥ t], t maximising train accuracy',
    explanation: 'A cosine threshold fitted on a stratified train split of the associations, applied to the test split.',
    resampled: 'test associations (threshold fixed)',
  },
  probe_accuracy: {
    name: 'Linear-probe accuracy',
    formula: '(1/n) Σ_i [ŷ_i = y_i], ŷ_i from logistic regression trained on the other k−1 folds',
    explanation: 'How well a linear classifier on the frozen embeddings predicts the label (k-fold cross-validation, stratified, seeded; L2-regularised multinomial logistic regression).',
    resampled: 'texts (out-of-fold predictions fixed)',
  },
  silhouette: {
    name: 'Silhouette (cosine)',
    formula: 'mean_i (b_i − a_i) / max(a_i, b_i); a_i: mean 1−cos to own class, b_i: to the nearest other class',
    explanation: 'How tightly texts cluster by label. −1 to 1; higher = labels form compact, separate clusters.',
    resampled: 'texts, within each label',
  },
  recall_at_1: {
    name: 'Recall@1',
    formula: 'mean over queries of |relevant in top 1| / |relevant|',
    explanation: 'Share of relevant corpus items found at the top of the cosine ranking.',
    resampled: 'queries',
  },
  recall_at_5: {
    name: 'Recall@5',
    formula: 'mean over queries of |relevant in top 5| / |relevant|',
    explanation: 'Share of relevant corpus items found in the top 5 by cosine.',
    resampled: 'queries',
  },
  recall_at_10: {
    name: 'Recall@10',
    formula: 'mean over queries of |relevant in top 10| / |relevant|',
    explanation: 'Share of relevant corpus items found in the top 10 by cosine.',
    resampled: 'queries',
  },
  mrr: {
    name: 'MRR',
    formula: 'mean over queries of 1 / rank of the first relevant item',
    explanation: 'Mean reciprocal rank: 1 when a relevant item always comes first; ties with non-relevant items count against the query.',
    resampled: 'queries',
  },
  zero_shot_accuracy: {
    name: 'Zero-shot statement accuracy',
    formula: '(1/n) Σ_i [(log p(true answer) − log p(false answer) > 0) = label_i]',
    explanation: 'Decoder LLMs: the share of labelled statements where the model gives the right answer more probability after a question about the statement (the CTD study’s measure; a tie counts as answering false).',
    resampled: 'statements, within true and false',
  },
  zero_shot_auroc: {
    name: 'Zero-shot statement AUROC',
    formula: 'P(margin(true statement) > margin(false statement)) + ½ P(equal), margin = log p(true answer) − log p(false answer)',
    explanation: 'Decoder LLMs: how well the answer margin ranks true statements above false ones, whatever the model’s bias towards one answer. 0.5 = chance.',
    resampled: 'statements, within true and false',
  },
  perplexity: {
    name: 'Perplexity (held-out texts)',
    formula: 'exp((1/N) Σ_texts Σ_t −log p(token_t | tokens before it)), N = predicted tokens',
    explanation: 'Decoder LLMs: how surprised the model is by the held-out texts, token by token (exp of the mean next-token loss). Lower is better; a domain adapter trained on notes like these should lower it.',
    resampled: 'texts, each with all its tokens',
  },
} as const satisfies Record<string, MetricHelp>;

export type MetricKey = keyof typeof METRIC_HELP;

/** Trustworthiness of a t-SNE map, shown beside the scatter plot. */
export const TRUSTWORTHINESS_HELP: MetricHelp = {
  name: 'Trustworthiness',
  formula: '1 − 2/(n k (2n − 3k − 1)) Σ_i Σ_{j∈U_k(i)} (r(i, j) − k)',
  explanation: 'Whether the map’s near neighbours were near in the embedding space (1 = no false neighbours); U_k(i) are map neighbours of i that were not among its k nearest, r their original rank.',
  resampled: 'not bootstrapped',
};
