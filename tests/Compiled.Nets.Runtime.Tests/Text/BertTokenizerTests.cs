using System.Diagnostics;
using Compiled.Nets.Text;

namespace Compiled.Nets.Tests.Text;

/// <summary>The tokenizer's API around the oracle-checked core, and the vocabulary reader's refusals.</summary>
public class BertTokenizerTests
{
    private static readonly string[] Vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!", "un", "##aff", "##able", "cafe"];

    [Fact]
    public void Encode_GivesClsTextSep_TypeIds_Mask_AndOffsetsIntoTheText()
    {
        var t = new BertTokenizer(Vocab);
        const string text = "Hello, unaffable CAFÉ!";
        var e = t.Encode(text);
        Assert.Equal(new[] { 2, 5, 7, 9, 10, 11, 12, 8, 3 }, e.Ids);
        Assert.All(e.TypeIds, x => Assert.Equal(0, x));
        Assert.All(e.AttentionMask, x => Assert.Equal(1, x));
        Assert.Equal(new[] { "Hello", ",", "un", "aff", "able", "CAFÉ", "!" }, e.Offsets[1..^1].Select(o => text[o.Start..o.End]));
        Assert.Equal((0, 0), e.Offsets[0]);
    }

    [Fact]
    public void Truncation_KeepsSepLast_AndPaddingFillsWithPad()
    {
        var t = new BertTokenizer(Vocab);
        var e = t.Encode("hello world hello world", maxLength: 4, padTo: 6);
        Assert.Equal(new[] { 2, 5, 6, 3, 0, 0 }, e.Ids);
        Assert.Equal(new[] { 1, 1, 1, 1, 0, 0 }, e.AttentionMask);
    }

    [Fact]
    public void A_long_text_costs_what_its_kept_tokens_cost_and_special_tokens_are_found_in_linear_time()
    {
        var t = new BertTokenizer(Vocab);
        // Truncation keeps the first tokens: tokenizing stops after them instead of building all 2 million.
        string bangs = new('!', 2_000_000);
        t.Encode("hello", 128); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = t.Encode(bangs, 128);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal([2, .. Enumerable.Repeat(8, 126), 3], e.Ids);
        Assert.True(allocated < 200_000, $"{allocated} bytes allocated for 128 tokens");
        // A pair counts both texts to the end (which is longer decides the cut) but keeps only what it may use.
        before = GC.GetAllocatedBytesForCurrentThread();
        var pair = t.Encode(bangs, "hello world", 10);
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal([2, 8, 8, 8, 8, 8, 3, 5, 6, 3], pair.Ids);
        Assert.True(allocated < 200_000, $"{allocated} bytes allocated for a pair of 10 tokens");
        // 200,000 special tokens: each was searched for again from every match (quadratic: minutes); now well under a second.
        string specials = string.Concat(Enumerable.Repeat("[SEP] hello ", 200_000));
        var sw = Stopwatch.StartNew();
        var s = t.Encode(specials, 8);
        var full = t.Tokenize(specials);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"{sw.Elapsed.TotalSeconds:F1} s");
        Assert.Equal([2, 3, 5, 3, 5, 3, 5, 3], s.Ids);
        Assert.Equal(400_000, full.Count);
    }

    [Fact]
    public void A_batch_with_a_null_text_or_no_room_for_the_special_tokens_is_refused_before_the_parallel_loop()
    {
        var t = new BertTokenizer(Vocab);
        Assert.Contains("Text 1 of the batch is null", Assert.Throws<ArgumentNullException>(() => t.EncodeBatch(["hello", null!, "world"])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.EncodeBatch(["hello"], maxLength: 1));
    }

    [Fact]
    public void Pairs_GetTypeIdsOneForTheSecondText()
    {
        var t = new BertTokenizer(Vocab);
        var e = t.Encode("hello", "world !");
        Assert.Equal(new[] { 2, 5, 3, 6, 8, 3 }, e.Ids);
        Assert.Equal(new[] { 0, 0, 0, 1, 1, 1 }, e.TypeIds);
    }

    [Fact]
    public void EncodeBatch_PadsToTheLongest()
    {
        var t = new BertTokenizer(Vocab);
        var (ids, mask, types, length) = t.EncodeBatch(["hello", "hello world !"]);
        Assert.Equal(5, length);
        Assert.Equal(new[] { 2, 5, 3, 0, 0, 2, 5, 6, 8, 3 }, ids);
        Assert.Equal(new[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 }, mask);
        Assert.All(types, x => Assert.Equal(0, x));
    }

    [Fact]
    public void AWordLongerThan100Characters_IsOneUnk()
    {
        var t = new BertTokenizer(Vocab);
        Assert.Equal(new[] { "[UNK]" }, t.Tokenize(string.Concat(Enumerable.Repeat("un", 51))));
        Assert.Equal(Enumerable.Repeat("un", 1), t.Tokenize("un"));
    }

    [Fact]
    public void BadVocabularies_AreRefused_WithTheReason()
    {
        string dir = Directory.CreateTempSubdirectory("cnet-vocab").FullName;
        try
        {
            string Write(string name, string text) { string p = Path.Combine(dir, name); File.WriteAllText(p, text); return p; }
            void Refused(string path, string reason) => Assert.Contains(reason, Assert.Throws<InvalidDataException>(() => BertTokenizer.FromVocabFile(path)).Message);

            Refused(Write("dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n"), "'hello' repeats line 5");
            Refused(Write("cr.txt", "[PAD]\r[UNK]\r[CLS]\r[SEP]\r"), "CR-only line endings");
            Refused(Write("nocls.txt", "[PAD]\n[UNK]\n[SEP]\nhello\n"), "no [CLS] token");
            Refused(Write("empty.txt", ""), "empty");
            Refused(Write("blank.txt", "[PAD]\n\n[UNK]\n"), "line 2: an empty token");
            Assert.Throws<FileNotFoundException>(() => BertTokenizer.FromVocabFile(Path.Combine(dir, "missing.txt")));
            File.WriteAllBytes(Path.Combine(dir, "latin1.txt"), [0x5B, 0x50, 0x41, 0x44, 0x5D, 0x0A, 0xE9, 0x0A]);
            Refused(Path.Combine(dir, "latin1.txt"), "not UTF-8");
            // A link to an endless device: refused at once, nothing read.
            File.CreateSymbolicLink(Path.Combine(dir, "zero.txt"), "/dev/zero");
            var clock = Stopwatch.StartNew();
            Refused(Path.Combine(dir, "zero.txt"), "not a regular file");
            Assert.True(clock.ElapsedMilliseconds < 1000);
            // CRLF is fine.
            Assert.Equal(5, BertTokenizer.FromVocabFile(Write("crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n")).Vocabulary.Count);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task AFifo_IsRefused_WithoutBlocking()
    {
        if (OperatingSystem.IsWindows()) return;
        string dir = Directory.CreateTempSubdirectory("cnet-fifo").FullName;
        try
        {
            string fifo = Path.Combine(dir, "vocab.txt");
            using (var mk = Process.Start("mkfifo", fifo)) mk.WaitForExit();
            var read = Task.Run(() => Assert.Throws<InvalidDataException>(() => BertVocabulary.Read(fifo)));
            Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(5))) == read, "reading a FIFO blocked");
            await read;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
