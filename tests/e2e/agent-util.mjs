// Shared by the agent test files: the default agent's id, ELIZA's known answers, SSE parsing.

/** The default ELIZA agent: stringToUuid('Eliza'), the id seed 001 hard-codes. */
export const ELIZA = 'b850bc30-45f8-0041-a00a-83df46d8555d';

// The DOCTOR script's answers to "I am <sad word>" (its /SAD decomposition), in any rotation.
export const SAD_REPLIES = [
  'I am sorry to hear you are unhappy.',
  'Do you think coming here will help you not to be unhappy?',
  "I'm sure its not pleasant to be unhappy.", // sic: the 1966 script has no apostrophe
  'Can you explain what made you unhappy?',
];

/** Parses a text/event-stream body into [{event, data}] (data JSON-decoded). */
export function parseSse(text) {
  return text.split('\n\n').filter((b) => b.trim() && !b.startsWith(':')).map((block) => {
    const lines = block.split('\n');
    const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
    return { event, data: data ? JSON.parse(data) : undefined };
  });
}
