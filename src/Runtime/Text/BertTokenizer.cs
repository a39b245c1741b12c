using System.Text;

namespace Compiled.Nets.Text;

/// <summary>Options of <see cref="BertTokenizer"/>, named and defaulted as Hugging Face's <c>BertTokenizerFast</c>.</summary>
public sealed record BertTokenizerOptions
{
    /// <summary>Lower-case the text (uncased vocabularies). Default true.</summary>
    public bool Lowercase { get; init; } = true;
    /// <summary>Strip accents (decompose, drop nonspacing marks); null: as <see cref="Lowercase"/>, HF's default.</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Delete control and format characters, turn every kind of white space into a space. Default true.</summary>
    public bool CleanText { get; init; } = true;
    /// <summary>Put spaces around CJK ideographs so each becomes a word. Default true.</summary>
    public bool HandleChineseChars { get; init; } = true;
    /// <summary>A longer word becomes [UNK] without being split. Default 100.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;
}

/// <summary>One encoded text (or pair): ids with [CLS]/[SEP], token type ids, attention mask and offsets.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="TypeIds">0 for the first text and its [CLS]/[SEP], 1 for the second text and its [SEP]; 0 for padding.</param>
/// <param name="AttentionMask">1 for a token, 0 for padding.</param>
/// <param name="Offsets">Each token's [start, end) in UTF-16 code units of the text it came from; (0, 0) for special tokens and padding.</param>
/// <param name="SequenceIds">0 or 1: the text a token came from; -1 for special tokens and padding.</param>
public sealed record BertEncoding(int[] Ids, int[] TypeIds, int[] AttentionMask, (int Start, int End)[] Offsets, int[] SequenceIds)
{
    /// <summary>Number of tokens, padding included.</summary>
    public int Length => Ids.Length;
}

/// <summary>
/// BERT's tokenization, id for id as Hugging Face's <c>BertTokenizerFast</c> (tokenizers' BertNormalizer,
/// BertPreTokenizer, WordPiece and BertProcessing, with the special tokens matched in the raw text): clean-up,
/// spaced CJK ideographs, accent stripping and lower-casing for uncased vocabularies, a split at white space and
/// around every punctuation character, greedy longest-match WordPiece with <c>##</c> continuations, truncation in
/// tokens (longest first for pairs), [CLS] A [SEP] (B [SEP]) with token type ids and offsets into the text.
/// </summary>
/// <remarks>
/// Owned here rather than taken from a library: Microsoft.ML.Tokenizers' BertTokenizer splits words with a regular
/// expression that deletes symbols, keeps underscores inside words and truncates at word boundaries, and string
/// normalisation is unavailable with InvariantGlobalization; BERT's rules are short. The character classes come
/// from <see cref="BertCharacterTables"/>, read off Hugging Face's implementation, so no ICU is needed (NativeAOT,
/// invariant globalization). Thread-safe after construction.
/// </remarks>
public sealed class BertTokenizer
{
    private readonly Dictionary<string, int> _words;      // word-initial pieces
    private readonly Dictionary<string, int> _continuations; // "##x" pieces, keyed without "##"
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _wordLookup, _continuationLookup;
    private readonly string[] _specialTokens;             // matched in the raw text, longest first
    private readonly int[] _specialIds;
    private readonly bool _strip;

    /// <summary>The vocabulary, a token's id being its index.</summary>
    public IReadOnlyList<string> Vocabulary { get; }
    /// <summary>The options in force.</summary>
    public BertTokenizerOptions Options { get; }
    /// <summary>Id of [CLS].</summary>
    public int ClsId { get; }
    /// <summary>Id of [SEP].</summary>
    public int SepId { get; }
    /// <summary>Id of [PAD].</summary>
    public int PadId { get; }
    /// <summary>Id of [UNK].</summary>
    public int UnkId { get; }

    /// <summary>Creates a tokenizer over a vocabulary (a token's id is its index).</summary>
    /// <exception cref="InvalidDataException">A token repeats, is empty or holds a line break, or [UNK], [CLS], [SEP] or [PAD] is missing.</exception>
    public BertTokenizer(IReadOnlyList<string> vocabulary, BertTokenizerOptions? options = null)
    {
        Options = options ?? new BertTokenizerOptions();
        if (Options.MaxInputCharsPerWord < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.MaxInputCharsPerWord, "MaxInputCharsPerWord must be positive.");
        _strip = Options.StripAccents ?? Options.Lowercase;
        Vocabulary = vocabulary;
        var all = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        _words = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        _continuations = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocabulary.Count; i++)
        {
            string token = vocabulary[i];
            if (token.Length == 0 || token.AsSpan().ContainsAny('\n', '\r'))
                throw new InvalidDataException($"Vocabulary token {i} is empty or holds a line break.");
            if (!all.TryAdd(token, i)) throw new InvalidDataException($"Vocabulary token '{token}' appears twice (ids {all[token]} and {i}): ids would be ambiguous.");
            if (token.StartsWith("##", StringComparison.Ordinal)) _continuations.TryAdd(token[2..], i);
            _words.TryAdd(token, i);
        }
        int Special(string token) => all.TryGetValue(token, out int id) ? id
            : throw new InvalidDataException($"The vocabulary has no {token} token, which BERT's input needs.");
        UnkId = Special("[UNK]"); ClsId = Special("[CLS]"); SepId = Special("[SEP]"); PadId = Special("[PAD]");
        var specials = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Where(all.ContainsKey).OrderByDescending(s => s.Length).ToArray();
        _specialTokens = specials;
        _specialIds = specials.Select(s => all[s]).ToArray();
        _wordLookup = _words.GetAlternateLookup<ReadOnlySpan<char>>();
        _continuationLookup = _continuations.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Reads a <c>vocab.txt</c> (one token per line) and creates a tokenizer.</summary>
    /// <exception cref="InvalidDataException">See <see cref="BertVocabulary.Read"/> and the constructor.</exception>
    public static BertTokenizer FromVocabFile(string path, BertTokenizerOptions? options = null) => new(BertVocabulary.Read(path), options);

    /// <summary>The WordPiece tokens of a text, without special tokens or truncation.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = new Pieces(int.MaxValue, stopWhenFull: false);
        Tokenize(text, pieces);
        return pieces.Kept.Select(p => Vocabulary[p.Id]).ToList();
    }

    /// <summary>
    /// Encodes one text as [CLS] tokens [SEP], keeping at most <paramref name="maxLength"/> tokens in all (the
    /// text's tokens are cut, [SEP] stays last), then pads to <paramref name="padTo"/> when it is longer.
    /// </summary>
    public BertEncoding Encode(string text, int maxLength = 512, int padTo = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "maxLength must leave room for [CLS] and [SEP] (at least 2).");
        // Truncation keeps the first tokens, which do not depend on the text after them: tokenizing stops there, so a
        // long text costs what its first maxLength tokens cost.
        var a = new Pieces(maxLength - 2, stopWhenFull: true);
        Tokenize(text, a);
        return Assemble(a.Kept, null, padTo);
    }

    /// <summary>
    /// Encodes a pair as [CLS] A [SEP] B [SEP] with token type ids 0 then 1, keeping at most
    /// <paramref name="maxLength"/> tokens (longest first: the longer text loses tokens first, as HF truncates).
    /// </summary>
    public BertEncoding Encode(string text, string pair, int maxLength = 512, int padTo = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(pair);
        if (maxLength < 3) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "maxLength must leave room for [CLS] and two [SEP] (at least 3).");
        int budget = maxLength - 3;
        // Neither text keeps more than the budget, but which is longer decides the cut: both are counted to the end
        // (only their first tokens are kept, so memory stays bounded).
        var a = new Pieces(budget, stopWhenFull: false);
        var b = new Pieces(budget, stopWhenFull: false);
        Tokenize(text, a);
        Tokenize(pair, b);
        if (a.Count + b.Count > budget)
        {
            // Keep the shorter whole if it fits in half-or-more, else split the budget evenly (the first gets the odd one).
            long shorter = Math.Min(a.Count, b.Count);
            long keepShort = shorter, keepLong = shorter > budget ? shorter : Math.Max(shorter, budget - shorter);
            if (keepShort + keepLong > budget) { keepShort = budget / 2; keepLong = keepShort + budget % 2; }
            long keepA = a.Count > b.Count ? keepLong : keepShort, keepB = a.Count > b.Count ? keepShort : keepLong;
            a.Truncate((int)Math.Min(keepA, budget));
            b.Truncate((int)Math.Min(keepB, budget));
        }
        return Assemble(a.Kept, b.Kept, padTo);
    }

    /// <summary>
    /// Encodes a batch of texts into [count, length] row-major arrays padded with [PAD] to the longest (or to
    /// <paramref name="padTo"/> when larger): what a <c>TextDataset</c> or a compiled network takes.
    /// </summary>
    public (int[] Ids, int[] AttentionMask, int[] TypeIds, int Length) EncodeBatch(IReadOnlyList<string> texts, int maxLength = 512, int padTo = 0)
    {
        // Checked here: inside the parallel loop an error would surface wrapped in an AggregateException.
        ArgumentNullException.ThrowIfNull(texts);
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "maxLength must leave room for [CLS] and [SEP] (at least 2).");
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentNullException(nameof(texts), $"Text {i} of the batch is null.");
        var encodings = new BertEncoding[texts.Count];
        Parallel.For(0, texts.Count, i => encodings[i] = Encode(texts[i], maxLength));
        int length = Math.Max(padTo, encodings.Length == 0 ? 0 : encodings.Max(e => e.Length));
        var ids = new int[texts.Count * length];
        var mask = new int[ids.Length];
        var types = new int[ids.Length];
        Array.Fill(ids, PadId);
        for (int i = 0; i < encodings.Length; i++)
        {
            encodings[i].Ids.CopyTo(ids, i * length);
            encodings[i].AttentionMask.CopyTo(mask, i * length);
            encodings[i].TypeIds.CopyTo(types, i * length);
        }
        return (ids, mask, types, length);
    }

    // ------------------------------------------------------------------ pipeline

    /// <summary>A token: its id and where it came from in the text (UTF-16).</summary>
    private readonly record struct Piece(int Id, int Start, int End);

    /// <summary>A text's tokens as they come: all of them counted, the first <c>limit</c> kept; with
    /// <c>stopWhenFull</c>, tokenizing ends once they are there.</summary>
    private sealed class Pieces(int limit, bool stopWhenFull)
    {
        public List<Piece> Kept { get; } = new(Math.Min(limit, 512));
        public long Count { get; private set; }
        public bool Done => stopWhenFull && Count >= limit;

        public void Add(Piece p)
        {
            Count++;
            if (Kept.Count < limit) Kept.Add(p);
        }

        public void Truncate(int keep)
        {
            if (Kept.Count > keep) Kept.RemoveRange(keep, Kept.Count - keep);
        }
    }

    private BertEncoding Assemble(List<Piece> a, List<Piece>? b, int padTo)
    {
        int n = 2 + a.Count + (b is null ? 0 : b.Count + 1), length = Math.Max(n, padTo);
        var ids = new int[length];
        var types = new int[length];
        var mask = new int[length];
        var offsets = new (int, int)[length];
        var sequence = new int[length];
        Array.Fill(ids, PadId);
        Array.Fill(sequence, -1);
        int k = 0;
        void Special(int id, int type) { ids[k] = id; types[k] = type; mask[k] = 1; k++; }
        void Text(List<Piece> pieces, int type)
        {
            foreach (var p in pieces) { ids[k] = p.Id; types[k] = type; mask[k] = 1; offsets[k] = (p.Start, p.End); sequence[k] = type; k++; }
            Special(SepId, type);
        }
        Special(ClsId, 0);
        Text(a, 0);
        if (b is not null) Text(b, 1);
        return new BertEncoding(ids, types, mask, offsets, sequence);
    }

    /// <summary>The text's tokens: special tokens matched verbatim in the raw text, everything between tokenized.</summary>
    private void Tokenize(string text, Pieces output)
    {
        // Each special token's next occurrence, searched again only once passed: the text is read a bounded number of
        // times however many special tokens it holds (searching each from every match was quadratic).
        Span<int> next = stackalloc int[_specialTokens.Length];
        next.Fill(-2);
        var word = new Word(Options.MaxInputCharsPerWord);
        int from = 0;
        while (from < text.Length && !output.Done)
        {
            int at = -1, which = -1;
            for (int s = 0; s < _specialTokens.Length; s++)
            {
                if (next[s] == -2 || (next[s] >= 0 && next[s] < from)) next[s] = text.IndexOf(_specialTokens[s], from, StringComparison.Ordinal);
                int i = next[s];
                if (i >= 0 && (at < 0 || i < at)) { at = i; which = s; }
            }
            int end = at < 0 ? text.Length : at;
            Segment(text, from, end, word, output);
            if (at < 0 || output.Done) break;
            output.Add(new Piece(_specialIds[which], at, at + _specialTokens[which].Length));
            from = at + _specialTokens[which].Length;
        }
    }

    /// <summary>
    /// Normalises text[start..end), splits it into words and WordPiece-tokenizes each, as a stream: each normalised
    /// character goes straight to the word being built, and a word is tokenized when it ends, so memory holds one word
    /// and tokenizing stops as soon as <paramref name="output"/> is done.
    /// </summary>
    private void Segment(string text, int start, int end, Word word, Pieces output)
    {
        word.Clear();
        // Words: split at white space (dropped) and around punctuation (kept as words of their own).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        void Emit(int cp, int s, int e)
        {
            bool split = BertCharacterTables.In(BertCharacterTables.Splitters, cp), punct = !split && BertCharacterTables.In(BertCharacterTables.Punctuation, cp);
            if (!split && !punct) { word.Append(cp, s, e); return; }
            if (word.Runes > 0) { WordPiece(word, output); word.Clear(); }
            if (punct) { word.Append(cp, s, e); WordPiece(word, output); word.Clear(); }
        }
        void EmitCased(int cp, int s, int e)
        {
            if (Options.Lowercase && BertCharacterTables.Lookup(BertCharacterTables.LowerKeys, BertCharacterTables.LowerStart, BertCharacterTables.LowerText, cp) is { } lower)
                foreach (var r in lower.EnumerateRunes()) Emit(r.Value, s, e);
            else Emit(cp, s, e);
        }

        for (int i = start; i < end && !output.Done;)
        {
            // A lone surrogate reaches HF as U+FFFD.
            int cp = Rune.DecodeFromUtf16(text.AsSpan(i, end - i), out var rune, out int used) == System.Buffers.OperationStatus.Done ? rune.Value : 0xFFFD;
            int s = i, e = i + Math.Max(1, used);
            i = e;
            if (Options.CleanText)
            {
                if (cp == 0 || cp == 0xFFFD || BertCharacterTables.In(BertCharacterTables.Removed, cp)) continue;
                if (BertCharacterTables.In(BertCharacterTables.Spaces, cp)) cp = ' ';
            }
            if (Options.HandleChineseChars && IsChineseChar(cp))
            {
                Emit(' ', s, e); Emit(cp, s, e); Emit(' ', s, e);
                continue;
            }
            if (_strip)
            {
                if (cp is >= 0xAC00 and < 0xAC00 + 11172)
                {
                    // Hangul syllables decompose arithmetically into their jamo (none of which is a nonspacing mark).
                    int si = cp - 0xAC00, t = si % 28;
                    EmitCased(0x1100 + si / 588, s, e); EmitCased(0x1161 + si % 588 / 28, s, e);
                    if (t != 0) EmitCased(0x11A7 + t, s, e);
                    continue;
                }
                if (BertCharacterTables.Lookup(BertCharacterTables.StripKeys, BertCharacterTables.StripStart, BertCharacterTables.StripText, cp) is { } stripped)
                {
                    foreach (var r in stripped.EnumerateRunes()) EmitCased(r.Value, s, e);
                    continue;
                }
            }
            EmitCased(cp, s, e);
        }
        if (word.Runes > 0 && !output.Done) WordPiece(word, output);
    }

    /// <summary>The normalised word being built: its characters (UTF-16) with the text span each came from; past the
    /// longest word WordPiece splits, only its extent is kept (it becomes one [UNK]).</summary>
    private sealed class Word(int longest)
    {
        // At most `longest` runes are kept, two UTF-16 units each: the buffers never grow. Ids and Ends hold WordPiece's
        // matches until the word has matched to its end.
        public readonly char[] Chars = new char[2 * longest];
        public readonly (int Start, int End)[] Source = new (int, int)[2 * longest];
        public readonly int[] Ids = new int[2 * longest], Ends = new int[2 * longest];
        public int Length, Runes, Start, End;
        public bool TooLong => Runes > longest;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void Append(int cp, int s, int e)
        {
            if (Runes == 0) Start = s;
            End = e;
            if (++Runes > longest) return;
            if (cp < 0x10000) { Source[Length] = (s, e); Chars[Length++] = (char)cp; return; }
            Source[Length] = (s, e); Chars[Length++] = (char)(0xD7C0 + (cp >> 10));
            Source[Length] = (s, e); Chars[Length++] = (char)(0xDC00 | (cp & 0x3FF));
        }

        public void Clear() { Length = 0; Runes = 0; }
    }

    /// <summary>Greedy longest-match-first WordPiece of a word; a word with an unmatched rest is one [UNK].</summary>
    private void WordPiece(Word w, Pieces output)
    {
        if (w.TooLong) { output.Add(new Piece(UnkId, w.Start, w.End)); return; }
        ReadOnlySpan<char> word = w.Chars.AsSpan(0, w.Length);
        var source = w.Source;
        // A word's pieces count only once it matched to its end (else it is one [UNK]): first their ids and ends.
        var ids = w.Ids; var ends = w.Ends;
        int pieces = 0;
        for (int s = 0; s < word.Length;)
        {
            int e = word.Length, id = -1;
            while (e > s)
            {
                var part = word[s..e];
                if ((s == 0 ? _wordLookup : _continuationLookup).TryGetValue(part, out id)) break;
                e -= char.IsLowSurrogate(word[e - 1]) && e - 2 >= s ? 2 : 1;
                id = -1;
            }
            if (id < 0) { output.Add(new Piece(UnkId, w.Start, w.End)); return; }
            ids[pieces] = id; ends[pieces++] = e;
            s = e;
        }
        for (int k = 0, s = 0; k < pieces; s = ends[k++]) output.Add(new Piece(ids[k], source[s].Start, source[ends[k] - 1].End));
    }

    private static int CountRunes(ReadOnlySpan<char> s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++) if (!char.IsLowSurrogate(s[i]) || i == 0 || !char.IsHighSurrogate(s[i - 1])) n++;
        return n;
    }

    /// <summary>CJK ideographs as BERT defines them (the CJK Unified Ideographs blocks and their extensions).</summary>
    private static bool IsChineseChar(int cp) => cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
        or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
