using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Compiled.Nets.Data;
using Compiled.Nets.Serialization;
using Compiled.Nets.Text;

namespace Compiled.Nets.Runtime.Tests.Serialization;

/// <summary>
/// Every reader against 10,000 mutated inputs grown from valid seeds (bit flips, interesting integers written over
/// header fields, truncation, duplicated and spliced chunks): each input either reads or fails with an
/// <see cref="InvalidDataException"/>, within a time bound and a memory bound proportional to its size.
/// </summary>
public class ReaderFuzzTests
{
    private const int Inputs = 10_000;

    private static readonly long[] Interesting = [0, 1, -1, 2, 7, 8, 255, 256, 65535, 1 << 20, int.MaxValue, int.MinValue, 1L << 31, 1L << 32, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>JSON values that readers of JSON headers meet in hostile files (a dictionary, as libFuzzer's).</summary>
    private static readonly string[] JsonValues =
    [
        "\"x\"", "\"\\ud800\"", "\"\\udfff\\ud800\"", "\"F32 \"", "\"F16,BF16\"", "\"1\"", "\"\"", "null", "true", "{}", "[]", "[1]", "[\"a\", 2]",
        "-1", "0", "1e400", "-0", "3.5", "18446744073709551615", "9223372036854775807", "2147483648", "[1073741824, 1073741824, 2]",
        "[0, 18446744073709551615]", "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": {\"h\": 1}}}}}}}}",
    ];

    /// <summary>Replaces one JSON value (after a ':', ',' or '[') with a dictionary value.</summary>
    private static void SpliceJsonValue(List<byte> b, Random rng)
    {
        var starts = Enumerable.Range(0, b.Count).Where(i => b[i] is (byte)':' or (byte)',' or (byte)'[').ToList();
        if (starts.Count == 0) return;
        int from = starts[rng.Next(starts.Count)] + 1, to = from;
        while (to < b.Count && b[to] is not ((byte)',' or (byte)']' or (byte)'}')) to++;
        b.RemoveRange(from, to - from);
        b.InsertRange(from, Encoding.UTF8.GetBytes(" " + JsonValues[rng.Next(JsonValues.Length)]));
    }

    private static byte[] Mutate(byte[][] seeds, Random rng, bool json)
    {
        var b = new List<byte>(seeds[rng.Next(seeds.Length)]);
        int rounds = 1 + rng.Next(3);
        for (int r = 0; r < rounds && b.Count > 0; r++)
        {
            int at = rng.Next(b.Count);
            if (json && rng.Next(2) == 0) { SpliceJsonValue(b, rng); continue; }
            switch (rng.Next(7))
            {
                case 0: for (int k = 0, n = 1 + rng.Next(8); k < n; k++) { int i = rng.Next(b.Count); b[i] ^= (byte)(1 << rng.Next(8)); } break;
                case 1: b[at] = (byte)new byte[] { 0, 0xFF, 0x7F, 0x80, 1, (byte)'"', (byte)'\\', (byte)'[', (byte)'\n', (byte)'\r' }[rng.Next(10)]; break;
                case 2:
                {
                    // An integer over a header field, little- or big-endian, 4 or 8 bytes.
                    long v = Interesting[rng.Next(Interesting.Length)];
                    var bytes = BitConverter.GetBytes(v);
                    int width = rng.Next(2) == 0 ? 4 : 8;
                    if (rng.Next(2) == 0) Array.Reverse(bytes, 0, width);
                    for (int k = 0; k < width && at + k < b.Count; k++) b[at + k] = bytes[k];
                    break;
                }
                case 3: b.RemoveRange(at, b.Count - at); break;                                   // truncate
                case 4: { int len = Math.Min(b.Count - at, 1 + rng.Next(64)); b.InsertRange(rng.Next(b.Count), b.GetRange(at, len)); break; } // duplicate a chunk
                case 5: { var other = seeds[rng.Next(seeds.Length)]; int from = rng.Next(other.Length); b.InsertRange(at, other.Skip(from).Take(1 + rng.Next(32))); break; }
                default: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(16))); break;       // cut a hole
            }
        }
        return b.ToArray();
    }

    /// <summary>Runs the reader on mutated inputs; any exception but InvalidDataException, a slow input or a large allocation fails.</summary>
    private static void Fuzz(byte[][] seeds, Action<byte[]> read, int seed, long fixedAllowance = 64L << 20, int perByte = 64, bool json = false)
    {
        foreach (var s in seeds) read(s); // the seeds themselves are valid
        var rng = new Random(seed);
        var total = Stopwatch.StartNew();
        int rejected = 0;
        for (int i = 0; i < Inputs; i++)
        {
            var input = Mutate(seeds, rng, json);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var clock = Stopwatch.StartNew();
            try { read(input); }
            catch (InvalidDataException) { rejected++; }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"input {i} ({input.Length} bytes, first: {Convert.ToHexString(input.AsSpan(0, Math.Min(64, input.Length)))}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(clock.ElapsedMilliseconds < 2000, $"input {i} took {clock.ElapsedMilliseconds} ms");
            Assert.True(allocated <= fixedAllowance + perByte * (long)input.Length, $"input {i} ({input.Length} bytes) allocated {allocated >> 20} MiB");
        }
        Assert.True(total.Elapsed < TimeSpan.FromMinutes(1), $"{Inputs} inputs took {total.Elapsed}");
        Assert.True(rejected > Inputs / 10, $"only {rejected} of {Inputs} mutated inputs were rejected: the mutations do not reach the checks");
    }

    private static byte[] SafeTensorsSeed(int variant) => SafeTensorsFile.Serialize(
        new[] { SafeTensor.FromFloats("a.weight", [2, 3], [1, 2, 3, 4, 5, 6]), SafeTensor.FromFloats("a.bias", [variant + 1], new float[variant + 1]),
            new SafeTensor("ids", variant % 2 == 0 ? SafeTensorDType.I64 : SafeTensorDType.BF16, [2], new byte[variant % 2 == 0 ? 16 : 4]) },
        new Dictionary<string, string> { ["format"] = "pt", ["note"] = "seed " + variant });

    [Fact]
    public void SafeTensors() => Fuzz([SafeTensorsSeed(0), SafeTensorsSeed(1), SafeTensorsSeed(2)], b =>
    {
        // What a caller does next: anything accepted must convert (a size that overflowed would fail here).
        foreach (var t in SafeTensorsFile.Parse(b).Tensors) t.ToFloats();
    }, seed: 1, json: true);

    private static readonly (string Name, TorchTensor Tensor)[][] StateDicts =
    [
        [("w", TorchTensor.Contiguous(TorchStorage.Floats("0", [1, 2, 3, 4, 5, 6]), [2, 3])), ("b", TorchTensor.Contiguous(TorchStorage.Floats("1", [7, 8]), [2]))],
        // A transposed view, an offset slice and two tensors sharing one storage.
        [("t", new TorchTensor(TorchStorage.Floats("0", [1, 2, 3, 4, 5, 6]), 0, [3, 2], [1, 3])), ("s", TorchTensor.Contiguous(TorchStorage.Floats("0", [1, 2, 3, 4, 5, 6]), [2], 4))],
    ];

    [Fact]
    public void TorchSaveArchives()
    {
        var seeds = StateDicts.Select((d, i) => TorchSave.Save(d, protocol: i % 2 == 0 ? 2 : 4)).Append(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures", "tiny_torch_save.bin"))).ToArray();
        Fuzz(seeds, b => PyTorchFile.Read(new MemoryStream(b), "fuzz"), seed: 2);
    }

    [Fact]
    public void TorchSavePickles_InArchivesWithValidChecksums()
    {
        // The pickle mutated, the archive rebuilt around it (valid CRCs): the unpickler and the view logic behind the zip checks.
        var storages = StateDicts.Select(d => d.Select(x => x.Tensor.Storage).ToArray()).ToArray();
        var pickles = StateDicts.Select((d, i) => TorchSave.StateDict(d, protocol: i % 2 == 0 ? 2 : 4, asParameters: i == 1)).ToArray();
        int which = 0;
        Fuzz(pickles, p => PyTorchFile.Read(new MemoryStream(TorchSave.Archive(p, storages[which++ % storages.Length])), "fuzz"), seed: 3, perByte: 4096);
    }

    private static byte[] Idx(int n, int rows, int cols, bool gzip)
    {
        var b = new byte[16 + n * rows * cols];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b, 0x803);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), n);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), rows);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), cols);
        for (int i = 16; i < b.Length; i++) b[i] = (byte)(i * 7);
        return gzip ? Gzip(b) : b;
    }

    internal static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    [Fact]
    public void IdxImages() => Fuzz([Idx(3, 4, 5, false), Idx(2, 7, 3, true)], b => DatasetReaders.ParseIdxImages(b, "fuzz"), seed: 4);

    [Fact]
    public void IdxLabels()
    {
        var labels = new byte[8 + 20];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(labels, 0x801);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), 20);
        for (int i = 0; i < 20; i++) labels[8 + i] = (byte)(i % 10);
        Fuzz([labels, Gzip(labels)], b => DatasetReaders.ParseIdxLabels(b, "fuzz", 10), seed: 8);
    }

    [Fact]
    public void Cifar10() => Fuzz([Enumerable.Range(0, 2 * 3073).Select(i => (byte)(i % 3073 == 0 ? i % 10 : i)).ToArray()],
        b => DatasetReaders.ParseCifar10(b, "fuzz", new List<float>(), new List<int>()), seed: 5, perByte: 256);

    [Fact]
    public void BertConfigs()
    {
        string config = """{"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "model_type": "bert", "architectures": ["BertForSequenceClassification"], "id2label": {"0": "ham", "1": "spam"}}""";
        Fuzz([Encoding.UTF8.GetBytes(config)], b => BertConfig.Parse(b, "fuzz"), seed: 6, json: true);
    }

    [Fact]
    public void Vocabularies()
    {
        string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\nhello\nworld\ncafé\n中\n";
        Fuzz([Encoding.UTF8.GetBytes(vocab), Encoding.UTF8.GetBytes(vocab.Replace("\n", "\r\n"))], b => new BertTokenizer(BertVocabulary.Parse(b, "fuzz")), seed: 7);
    }
}
