// Writes the BERT tokenization fixture: Hugging Face's own ids, type ids, attention masks and offsets for the shipped
// emails, a few hundred edge cases and seeded random strings, with the uncased vocabulary the sample uses and a cased
// one made from it. Tests/Compiled.Nets.Runtime.Tests/Text/BertTokenizerOracleTests compares every value.
// Run: cd tools/tokenizer-oracle && npm install && node make_fixtures.mjs
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tokenizers';

const root = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(root, 'tests/Compiled.Nets.Runtime.Tests/Text/Fixtures');
const uncasedPath = path.join(root, 'samples/BertSpam/data/vocab.txt');
const casedPath = path.join(fixtures, 'vocab-cased.txt');

// A cased vocabulary: the uncased one plus capitalised and upper-case forms of its first word pieces and some
// accented words, so cased tokenization meets real splits (no cased vocabulary can be downloaded here).
const uncased = fs.readFileSync(uncasedPath, 'utf8').split('\n').filter((l) => l.length > 0);
const cased = [...uncased];
const seen = new Set(cased);
const add = (w) => { if (!seen.has(w)) { seen.add(w); cased.push(w); } };
for (const w of uncased.slice(1000, 9000)) {
  if (w.startsWith('##') || w.startsWith('[')) continue;
  add(w[0].toUpperCase() + w.slice(1));
  if (w.length > 1) add(w.toUpperCase());
}
for (const w of ['café', 'Café', 'naïve', 'résumé', 'Zürich', 'São', 'Ångström', 'é', 'ü', 'ñ', 'ç', '##é', '##ü', '##ñ', 'İstanbul', 'Straße', 'ΣΊΣΥΦΟΣ', 'σίσυφος']) add(w);
fs.writeFileSync(casedPath, cased.join('\n') + '\n');

async function tokenizer(vocab, lowercase) {
  const tk = new t.Tokenizer(await t.WordPiece.fromFile(vocab, { unkToken: '[UNK]' }));
  tk.setNormalizer(t.bertNormalizer({ lowercase, cleanText: true, handleChineseChars: true }));
  tk.setPreTokenizer(t.bertPreTokenizer());
  const ids = Object.fromEntries(['[CLS]', '[SEP]'].map((s) => [s, tk.tokenToId(s)]));
  tk.setPostProcessor(t.bertProcessing(['[SEP]', ids['[SEP]']], ['[CLS]', ids['[CLS]']]));
  // As BertTokenizerFast: the special tokens are matched verbatim in the raw text.
  tk.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  return tk;
}

// Seeded strings from classes of characters that stress the rules.
let state = 12345;
const rand = (n) => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return state % n; };
const pools = [
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ' \t\n\r\u00a0\u2000\u3000',
  '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
  'àáâãäåæçèéêëìíîïðñòóôõöøùúûüýÿĀāĂăĄąĆćİıŁłŒœŠšŸŽžǅǆ',
  'ΑΒΓΔΣΩαβγδσςωАБВГДЖЯабвгджяאבגדابتث',
  '中文字日本語한국어ひらがなカタカナ你好世界',
  '\u0000\u0001\u001f\u007f\u0080\u009f\u00ad\u200b\u200c\u200d\u2060\ufeff\ufffd\ue000',
  '😀😃🥰👍🏽🇩🇪\u{1F9D1}\u{200D}\u{1F4BB}𝔘𝔫𝔦𝔠𝔬𝔡𝔢\u{20000}\u{2A6D6}',
  '°©®²³½¼€£¥§¶•…–—‘’“”«»¿¡‰′″※',
  '\u0301\u0308\u0327\u0345\u20dd\u0e31\u0e34',
];
function randomString() {
  const n = 1 + rand(40);
  let s = '';
  for (let i = 0; i < n; i++) { const pool = Array.from(pools[rand(pools.length)]); s += pool[rand(pool.length)]; }
  return s;
}

const edge = [
  '', ' ', '   ', '\t\n\r', 'Hello, world!', 'hello world', 'HELLO WORLD', "Their $10,000/night café sex_partners note\nbook 😀",
  'café naïve résumé Zürich São Ångström', 'CAFÉ NAÏVE', 'İstanbul ıi Straße ΣΊΣΥΦΟΣ σίσυφος', 'Ⅻ ⅻ ① ﬁ ﬀ ㎏ ｆｕｌｌｗｉｄｔｈ',
  '中文测试', '我爱北京天安门', '日本語のテキストとカタカナ', '한국어 텍스트입니다', '你好，世界！', 'mixed中文and English',
  '😀', '😀😀😀', 'a😀b', '👍🏽 🇩🇪 🧑‍💻', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕋𝕖𝕩𝕥', '\u{20000}\u{2A6D6}\u{2F800}', '\u{1F970} \u{1FAE0}',
  'a\u0000b', 'a\u0001b\u001fc', 'del\u007fete', 'x\u0085y', 'soft\u00adhyphen', 'zero\u200bwidth', 'zw\u200cnj\u200dj', 'bom\ufeffhere',
  'rep\ufffdlace', 'pua\ue000char', 'bidi\u202aemb\u202e', 'word\u2060joiner', 'tab\there', 'new\nline', 'cr\rreturn', 'crlf\r\nend',
  'nbsp\u00a0space', 'ideo\u3000space', 'line\u2028sep', 'para\u2029sep', 'thin\u2009space',
  'a'.repeat(100), 'a'.repeat(101), 'b'.repeat(250), 'supercalifragilisticexpialidocious', 'antidisestablishmentarianism',
  'unaffable', 'unbelievably', 'tokenization', 'tokenizers', 'WordPiece', 'johanson', "don't", "it's", "rock'n'roll",
  '$ + < = > ^ ` | ~', '° © ² ³ ½ € £ ¥ § ¶', '... !!! ??? ---', '“quoted” ‘single’ «guillemets» „low“', '—dash–en−minus',
  '1234567890', '3.14159', '1,000,000', '2002-10-10T12:34:47', '+1 (555) 123-4567', '192.168.0.1', '0x1F600', '1st 2nd 3rd 4th',
  'user@example.com', 'https://www.example.com/path?q=1&r=2#frag', 'C:\\Windows\\System32', '<html><body>Hi</body></html>',
  '#hashtag @mention', 'sex_partners', 'snake_case_name', 'CamelCaseName', 'kebab-case-name', 'dot.separated.name',
  '[CLS] already [SEP] inside', '[MASK] token', '[cls] lower', '[UNK][PAD]', 'a[SEP]b', '[SEP][SEP]', '[SE P]',
  'ALL CAPS SENTENCE WITH ACRONYMS LIKE NASA AND FBI', 'Mr. O\'Neil-Smith Jr.', 'e.g. i.e. etc.', 'naïve café' + ' word'.repeat(200),
  'Ελληνικά κείμενο', 'Русский текст', 'עברית טקסט', 'العربية نص', 'हिन्दी पाठ', 'ภาษาไทย', 'ქართული', 'Հայերեն', 'Tiếng Việt có dấu',
  'ǅungla ǈudi', 'ﬃ ﬄ', 'Å Å Å', 'é é', 'ñ ñ', '\u0301\u0301\u0301', 'e\u0301\u0308', 'ο\u0345',
];
for (let cp = 0x21; cp < 0x7f; cp++) edge.push('a' + String.fromCodePoint(cp) + 'b');
const random = Array.from({ length: 300 }, randomString);
const pairs = [
  ['How old are you?', "I'm 6 years old"], ['a b c d e f g', 'h i j k'], ['short', 'a much longer second sentence that will be truncated first ' + 'x '.repeat(100)],
  ['a first sentence that is longer than the second one by quite a lot ' + 'y '.repeat(100), 'second'], ['', 'only the second'], ['only the first', ''],
  ['中文 question', 'café answer 😀'],
];
for (let i = 0; i < 30; i++) pairs.push([randomString(), randomString()]);

const emailsRaw = zlib.gunzipSync(fs.readFileSync(path.join(root, 'samples/BertSpam/data/spam-assassin-subset.jsonl.gz'))).toString('utf8')
  .split('\n').filter((l) => l.trim().length > 0).map((l) => JSON.parse(l).text);
const emails = emailsRaw.map((e) => Array.from(e).slice(0, 1500).join(''));

const cases = [];
async function run(name, vocab, lowercase) {
  const tk = await tokenizer(vocab, lowercase);
  const push = async (text, pair, maxLength, padTo) => {
    tk.setTruncation(maxLength);
    if (padTo) tk.setPadding({ maxLength: padTo, padId: tk.tokenToId('[PAD]'), padToken: '[PAD]' }); else tk.disablePadding();
    const e = pair === undefined ? await tk.encode(text) : await tk.encode(text, pair);
    cases.push({ vocab: name, text, pair, maxLength, padTo: padTo || 0, ids: e.getIds(), typeIds: e.getTypeIds(), mask: e.getAttentionMask(),
      offsets: e.getOffsets().flat() });
  };
  for (const e of emails) await push(e, undefined, 512);
  for (const e of emails.slice(0, 100)) await push(e, undefined, 128);
  for (const s of edge) await push(s, undefined, 128);
  for (const s of random) await push(s, undefined, 128);
  for (const s of edge.slice(0, 20)) await push(s, undefined, 16, 24);
  for (const [a, b] of pairs) { await push(a, b, 128); await push(a, b, 16); }
}
await run('uncased', uncasedPath, true);
await run('cased', casedPath, false);
const out = path.join(fixtures, 'bert-tokenization.json.gz');
fs.writeFileSync(out, zlib.gzipSync(JSON.stringify({ generator: `Hugging Face tokenizers ${JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'node_modules/tokenizers/package.json'))).version} (Node bindings)`, cases }), { level: 9 }));
console.log(`wrote ${out}: ${cases.length} cases, ${cases.reduce((a, c) => a + c.ids.length, 0)} ids; ${casedPath}: ${cased.length} tokens`);
