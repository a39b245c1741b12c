using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Compiled.Nets.Text;

namespace Compiled.Nets.Bench;

/// <summary>
/// `tokenize`: BERT tokenization throughput on the shipped 600 emails (full texts, no truncation), ours and Hugging
/// Face's Rust library (tokenizers 0.23.2 through Node, tools/tokenizer-oracle/bench.mjs) in alternating rounds:
/// one text at a time on one thread, and the whole corpus as a batch (both cores on each side).
/// </summary>
internal static class TokenizeBench
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1]) : 5;
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Compiled.Nets.sln"))) root = Path.GetDirectoryName(root)!;
        string vocab = Path.Combine(root, "samples/BertSpam/data/vocab.txt"), corpus = Path.Combine(root, "samples/BertSpam/data/spam-assassin-subset.jsonl.gz");
        string oracle = Path.Combine(root, "tools/tokenizer-oracle");
        if (!Directory.Exists(Path.Combine(oracle, "node_modules"))) Process.Start(new ProcessStartInfo("npm", "install --no-audit --no-fund") { WorkingDirectory = oracle })!.WaitForExit();

        var texts = new List<string>();
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(corpus), CompressionMode.Decompress)))
            for (string? line; (line = reader.ReadLine()) is not null;)
                if (line.Trim().Length > 0) texts.Add(JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!);
        var tokenizer = BertTokenizer.FromVocabFile(vocab);
        Console.WriteLine($"{texts.Count} emails, {texts.Sum(t => t.Length) / 1e6:F2} M chars; CPU: {Environment.ProcessorCount} logical cores");

        var ours1 = new List<double>(); var oursB = new List<double>(); var hf1 = new List<double>(); var hfB = new List<double>();
        long tokens = 0;
        for (int r = 0; r < rounds; r++)
        {
            var clock = Stopwatch.StartNew();
            long n = 0;
            foreach (var t in texts) n += tokenizer.Encode(t, int.MaxValue).Length;
            ours1.Add(n / clock.Elapsed.TotalSeconds);
            tokens = n;
            clock.Restart();
            var (ids, _, _, _) = tokenizer.EncodeBatch(texts, int.MaxValue);
            oursB.Add(n / clock.Elapsed.TotalSeconds);
            GC.KeepAlive(ids);

            var psi = new ProcessStartInfo("node", $"bench.mjs \"{vocab}\" \"{corpus}\" 1") { WorkingDirectory = oracle, RedirectStandardOutput = true };
            using var node = Process.Start(psi)!;
            var json = JsonDocument.Parse(node.StandardOutput.ReadLine()!).RootElement;
            node.WaitForExit();
            long theirs = json.GetProperty("tokens").GetInt64();
            if (theirs != n) throw new InvalidOperationException($"token counts differ: ours {n}, Hugging Face {theirs}");
            hf1.Add(theirs / json.GetProperty("sequential").GetDouble());
            hfB.Add(theirs / json.GetProperty("batch").GetDouble());
        }
        static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        Console.WriteLine($"{tokens:N0} tokens per pass, {rounds} alternating rounds, medians:");
        Console.WriteLine($"  one text at a time: ours {Median(ours1) / 1e6:F2} M tokens/s, Hugging Face {Median(hf1) / 1e6:F2} M tokens/s ({Median(ours1) / Median(hf1):F2}×)");
        Console.WriteLine($"  whole corpus batch: ours {Median(oursB) / 1e6:F2} M tokens/s, Hugging Face {Median(hfB) / 1e6:F2} M tokens/s ({Median(oursB) / Median(hfB):F2}×)");
        return 0;
    }
}
