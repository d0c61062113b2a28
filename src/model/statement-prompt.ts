/**
 * CTD-style statements ("{Gene} is associated with {Disease}") put to a decoder as a question: the
 * prompt around the statement (plain, or through the tokenizer's chat template as a user turn with
 * the generation prompt), and the token ids of each answer as they follow that prompt. The answer's
 * log-probability after the prompt is what zero-shot scoring compares and what the statement
 * objective trains, so both read these same ids.
 */
import type { DecoderTokenizer } from './decoder-tokenizer.ts';

export interface StatementPrompt {
  /** The question around a statement; `{statement}` marks where the statement goes. */
  template: string;
  /** Render the question through the chat template (user turn + generation prompt). */
  chat: boolean;
  /** The answer texts, appended right after the prompt (a plain prompt wants the leading space). */
  answers: { true: string; false: string };
}

export const STATEMENT_PLACEHOLDER = '{statement}';

/** Answers as the model would write them: after "Answer:" with a space, at the start of a chat reply without. */
export function defaultAnswers(chat: boolean): StatementPrompt['answers'] {
  return chat ? { true: 'True', false: 'False' } : { true: ' True', false: ' False' };
}

export function defaultStatementPrompt(chat = false): StatementPrompt {
  return { template: `Is the following statement true or false?\n${STATEMENT_PLACEHOLDER}\nAnswer:`, chat, answers: defaultAnswers(chat) };
}

/** A statement's prompt ids (with the model's leading special tokens) and each answer's ids after it. */
export interface EncodedStatement {
  prompt: number[];
  true: number[];
  false: number[];
}

export function checkStatementPrompt(prompt: StatementPrompt): void {
  if (!prompt.template.includes(STATEMENT_PLACEHOLDER)) throw new Error(`statement prompt template must contain ${STATEMENT_PLACEHOLDER}, got ${JSON.stringify(prompt.template)}`);
  for (const kind of ['true', 'false'] as const) {
    if (prompt.answers[kind] === '') throw new Error(`the ${kind} answer of the statement prompt is empty`);
  }
  if (prompt.answers.true === prompt.answers.false) throw new Error(`the true and false answers are the same text ${JSON.stringify(prompt.answers.true)}`);
}

/**
 * Encode statement `index` (for messages) under `prompt`. An answer's ids are those the tokenizer
 * gives prompt + answer beyond the prompt's own ids, as when the model writes it; an answer whose
 * first token would merge with the prompt's last one has no such ids and is refused.
 */
export function encodeStatement(tokenizer: DecoderTokenizer, prompt: StatementPrompt, statement: string, index: number): EncodedStatement {
  if (typeof statement !== 'string' || statement.trim() === '') throw new Error(`statement ${index + 1} is empty`);
  const question = prompt.template.split(STATEMENT_PLACEHOLDER).join(statement);
  // The chat template writes its own special tokens; a plain prompt gets the model's leading ones.
  const text = prompt.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true }).text : question;
  const lead = prompt.chat ? [] : tokenizer.prefixIds;
  const promptIds = tokenizer.encode(text, { specialTokens: false });
  const answerIds = (kind: 'true' | 'false'): number[] => {
    const answer = prompt.answers[kind];
    const whole = tokenizer.encode(text + answer, { specialTokens: false });
    if (whole.length <= promptIds.length || promptIds.some((id, k) => whole[k] !== id)) {
      throw new Error(`statement ${index + 1}: the ${kind} answer ${JSON.stringify(answer)} merges with the end of the prompt into other tokens; end the prompt with a space or newline, or start the answer with one`);
    }
    return whole.slice(promptIds.length);
  };
  return { prompt: [...lead, ...promptIds], true: answerIds('true'), false: answerIds('false') };
}
