using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Compiled.Nets.Text;

namespace Compiled.Nets.Tests.Text;

/// <summary>
/// Every id, type id, mask value and offset against Hugging Face's own tokenizer (Rust, through its Node bindings),
/// recorded by tools/tokenizer-oracle/make_fixtures.mjs: the shipped emails, edge cases and seeded random strings,
/// uncased and cased, single texts, pairs, truncation and padding.
/// </summary>
public class BertTokenizerOracleTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Text", "Fixtures");

    private sealed record Case(string Vocab, string Text, string? Pair, int MaxLength, int PadTo, int[] Ids, int[] TypeIds, int[] Mask, int[] Offsets);

    private static readonly Lazy<List<Case>> s_cases = new(() =>
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Fixtures, "bert-tokenization.json.gz")), CompressionMode.Decompress);
        using var doc = JsonDocument.Parse(gz);
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("vocab").GetString()!, c.GetProperty("text").GetString()!,
            c.TryGetProperty("pair", out var p) ? p.GetString() : null, c.GetProperty("maxLength").GetInt32(), c.GetProperty("padTo").GetInt32(),
            Ints(c, "ids"), Ints(c, "typeIds"), Ints(c, "mask"), Ints(c, "offsets"))).ToList();
    });

    private static int[] Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static readonly Lazy<BertTokenizer> s_uncased = new(() => BertTokenizer.FromVocabFile(Path.Combine(Fixtures, "vocab-uncased.txt")));
    private static readonly Lazy<BertTokenizer> s_cased = new(() => BertTokenizer.FromVocabFile(Path.Combine(Fixtures, "vocab-cased.txt"), new BertTokenizerOptions { Lowercase = false }));

    /// <summary>UTF-16 offsets into <paramref name="text"/> as code-point offsets (how HF's bindings report them).</summary>
    private static int CodePoints(string text, int utf16)
    {
        int n = 0;
        for (int i = 0; i < utf16 && i < text.Length; i++) if (!(char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1]))) n++;
        return n;
    }

    [Theory]
    [InlineData("uncased")]
    [InlineData("cased")]
    public void EveryCase_MatchesHuggingFace_IdForId(string vocab)
    {
        var tokenizer = vocab == "uncased" ? s_uncased.Value : s_cased.Value;
        var cases = s_cases.Value.Where(c => c.Vocab == vocab).ToList();
        Assert.True(cases.Count > 1000, $"{cases.Count} cases");
        var failures = new StringBuilder();
        int failed = 0;
        foreach (var c in cases)
        {
            var e = c.Pair is null ? tokenizer.Encode(c.Text, c.MaxLength, c.PadTo) : tokenizer.Encode(c.Text, c.Pair, c.MaxLength, c.PadTo);
            var offsets = new int[2 * e.Length];
            for (int i = 0; i < e.Length; i++)
            {
                string source = e.SequenceIds[i] == 1 ? c.Pair! : c.Text;
                offsets[2 * i] = e.SequenceIds[i] < 0 ? 0 : CodePoints(source, e.Offsets[i].Start);
                offsets[2 * i + 1] = e.SequenceIds[i] < 0 ? 0 : CodePoints(source, e.Offsets[i].End);
            }
            string? what = !e.Ids.SequenceEqual(c.Ids) ? "ids" : !e.TypeIds.SequenceEqual(c.TypeIds) ? "type ids" : !e.AttentionMask.SequenceEqual(c.Mask) ? "mask" : !offsets.SequenceEqual(c.Offsets) ? "offsets" : null;
            if (what is null) continue;
            if (++failed > 5) continue;
            int at = what == "ids" ? FirstDifference(e.Ids, c.Ids) : 0;
            failures.AppendLine($"{what} differ for {JsonSerializer.Serialize(c.Text.Length > 200 ? c.Text[..200] : c.Text)}{(c.Pair is null ? "" : " + " + JsonSerializer.Serialize(c.Pair))} (max {c.MaxLength}):")
                .AppendLine($"  ours {string.Join(' ', e.Ids.Skip(Math.Max(0, at - 3)).Take(10).Select(i => tokenizer.Vocabulary[i]))}")
                .AppendLine($"  HF   {string.Join(' ', c.Ids.Skip(Math.Max(0, at - 3)).Take(10).Select(i => tokenizer.Vocabulary[i]))}");
        }
        Assert.True(failed == 0, $"{failed} of {cases.Count} cases differ from Hugging Face:\n{failures}");
    }

    private static int FirstDifference(int[] a, int[] b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }
}
