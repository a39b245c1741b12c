// Hugging Face tokenizers' speed on a corpus, for bench `-- tokenize`: prints one JSON line per round.
// Usage: node bench.mjs VOCAB CORPUS.jsonl.gz ROUNDS
import fs from 'node:fs';
import zlib from 'node:zlib';
import t from 'tokenizers';

const [vocab, corpus, rounds] = process.argv.slice(2);
const texts = zlib.gunzipSync(fs.readFileSync(corpus)).toString('utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).text);
const tk = new t.Tokenizer(await t.WordPiece.fromFile(vocab, { unkToken: '[UNK]' }));
tk.setNormalizer(t.bertNormalizer({ lowercase: true }));
tk.setPreTokenizer(t.bertPreTokenizer());
tk.setPostProcessor(t.bertProcessing(['[SEP]', tk.tokenToId('[SEP]')], ['[CLS]', tk.tokenToId('[CLS]')]));
tk.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
for (let r = 0; r < Number(rounds); r++) {
  let t0 = process.hrtime.bigint(), tokens = 0;
  for (const text of texts) tokens += (await tk.encode(text)).getIds().length;
  const one = Number(process.hrtime.bigint() - t0) / 1e9;
  t0 = process.hrtime.bigint();
  const batch = await tk.encodeBatch(texts);
  const all = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ tokens, sequential: one, batch: all, batchTokens: batch.reduce((a, e) => a + e.getIds().length, 0) }));
}
