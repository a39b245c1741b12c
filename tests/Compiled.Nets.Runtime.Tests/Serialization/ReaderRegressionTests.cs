using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Compiled.Nets.Data;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Runtime.Tests.Serialization;

/// <summary>The hostile files an outside probe found, each refused with an <see cref="InvalidDataException"/>, quickly and in little memory.</summary>
public class ReaderRegressionTests
{
    private static byte[] SafeTensorsWithHeader(string json, int dataBytes = 0)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + header.Length + dataBytes];
        BitConverter.GetBytes((ulong)header.Length).CopyTo(b, 0);
        header.CopyTo(b, 8);
        return b;
    }

    private static InvalidDataException Refused(Action read, long maxBytes = 64L << 20)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(read);
        Assert.True(clock.ElapsedMilliseconds < 5000, $"took {clock.ElapsedMilliseconds} ms");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < maxBytes, $"allocated {allocated >> 20} MiB");
        return e;
    }

    [Theory]
    [InlineData("""{"t": {"dtype": "F32", "shape": [1], "data_offsets": ["0", 4]}}""", "data_offsets")]
    [InlineData("""{"t": {"dtype": "F32", "shape": [1], "data_offsets": [[0], 4]}}""", "data_offsets")]
    [InlineData("""{"\ud800": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", "not valid Unicode")]
    [InlineData("""{"__metadata__": {"a": "\udfff"}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", "not valid Unicode")]
    [InlineData("""{"t": {"dtype": "F32 ", "shape": [1], "data_offsets": [0, 4]}}""", "unsupported dtype 'F32 '")]
    [InlineData("""{"t": {"dtype": "F16,BF16", "shape": [2], "data_offsets": [0, 4]}}""", "unsupported dtype 'F16,BF16'")]
    [InlineData("""{"t": {"dtype": "F64", "shape": [1073741824, 1073741824, 2], "data_offsets": [0, 0]}}""", "overflows")]
    [InlineData("""{"__metadata__": {"a": "1", "a": "2"}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", "duplicate metadata entry 'a'")]
    public void SafeTensors_HostileHeaders(string header, string reason) =>
        Assert.Contains(reason, Refused(() => SafeTensorsFile.Parse(SafeTensorsWithHeader(header, 4))).Message);

    [Fact]
    public void TorchSave_AStrideZeroViewOfOneElement_IsNotMaterialised()
    {
        // 2^14 × 2^14 floats (1 GiB) from a one-float storage: the 423-byte gigabyte.
        var storage = TorchStorage.Floats("0", [1f]);
        var bytes = TorchSave.Save([("huge", new TorchTensor(storage, 0, [1 << 14, 1 << 14], [0, 0]))]);
        Assert.True(bytes.Length < 2048);
        Assert.Contains("repeats the 1 elements", Refused(() => PyTorchFile.Read(new MemoryStream(bytes), "f")).Message);
    }

    [Fact]
    public void TorchSave_ManyViewsOfOneStorage_StayWithinFourTimesTheArchive()
    {
        var storage = TorchStorage.Floats("0", new float[1 << 16]);
        var dict = Enumerable.Range(0, 64).Select(i => ($"v{i}", TorchTensor.Contiguous(storage, [1 << 16]))).ToArray();
        Assert.Contains("add up to", Refused(() => PyTorchFile.Read(new MemoryStream(TorchSave.Save(dict)), "f")).Message);
    }

    [Fact]
    public void TorchSave_PicklesOfDupsAndMemoFanOut_TakeMemoryInProportionToTheirSize()
    {
        // ≈ 19.8 KB: PROTO, EMPTY_LIST, BINPUT 0, then (MARK, 1,980 × BINGET 0, APPENDS) × 5, STOP.
        var p = new List<byte> { 0x80, 2, (byte)']', (byte)'q', 0 };
        for (int round = 0; round < 5; round++)
        {
            p.Add((byte)'(');
            for (int i = 0; i < 1980; i++) { p.Add((byte)'h'); p.Add(0); }
            p.Add((byte)'e');
        }
        p.Add((byte)'.');
        long before = GC.GetAllocatedBytesForCurrentThread();
        PickleReader.Load(p.ToArray(), "data.pkl");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4L << 20);
        // 19,800 DUPs of a list, then STOP: refused (one value must remain), in little memory.
        var dups = new List<byte> { 0x80, 2, (byte)']' };
        dups.AddRange(Enumerable.Repeat((byte)'2', 19_800));
        dups.Add((byte)'.');
        Assert.Contains("STOP with 19801 values", Refused(() => PickleReader.Load(dups.ToArray(), "data.pkl"), maxBytes: 4L << 20).Message);
    }

    [Fact]
    public void TorchSave_ABitFlipInAStoredEntry_FailsItsCrc()
    {
        var bytes = TorchSave.Save([("w", TorchTensor.Contiguous(TorchStorage.Floats("0", [1, 2, 3, 4]), [4]))]);
        // Flip a bit inside the float data of archive/data/0 (stored, so its bytes appear verbatim).
        var data = new byte[16];
        for (int i = 0; i < 4; i++) BitConverter.GetBytes((float)(i + 1)).CopyTo(data, 4 * i);
        int at = bytes.AsSpan().IndexOf(data);
        Assert.True(at > 0);
        bytes[at + 5] ^= 0x10;
        Assert.Contains("CRC-32", Refused(() => PyTorchFile.Read(new MemoryStream(bytes), "f")).Message);
    }

    [Fact]
    public void TorchSave_DuplicateEntries_AreRefused()
    {
        var good = TorchSave.Save([("w", TorchTensor.Contiguous(TorchStorage.Floats("0", [1, 2]), [2]))]);
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        using (var src = new ZipArchive(new MemoryStream(good)))
            foreach (var e in src.Entries.Concat(src.Entries.Where(e => e.FullName.EndsWith("data/0", StringComparison.Ordinal))))
            {
                using var from = e.Open();
                using var to = zip.CreateEntry(e.FullName, CompressionLevel.NoCompression).Open();
                from.CopyTo(to);
            }
        Assert.Contains("entries named archive/data/0", Refused(() => PyTorchFile.Read(new MemoryStream(ms.ToArray()), "f")).Message);
    }

    [Fact]
    public void TorchSave_SizesThatOverflow_AreRefused()
    {
        var storage = TorchStorage.Floats("0", [1, 2, 3, 4]);
        foreach (var t in new[]
        {
            new TorchTensor(storage, 0, [int.MaxValue, int.MaxValue, int.MaxValue], [1, 1, 1]),
            new TorchTensor(storage, long.MaxValue - 1, [2], [1]),
            new TorchTensor(storage, 0, [3], [long.MaxValue / 2]),
        })
            Refused(() => PyTorchFile.Read(new MemoryStream(TorchSave.Save([("x", t)])), "f"));
    }

    private static byte[] IdxHeader(int n, int rows, int cols)
    {
        var b = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b, 0x803);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), n);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), rows);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), cols);
        return b;
    }

    [Theory]
    [InlineData(4, int.MaxValue, int.MaxValue, "more than one array holds")]
    [InlineData(16, 1 << 30, 1 << 30, "more than one array holds")]
    [InlineData(0, 1 << 16, 1 << 16, "images of 65536×65536 pixels: more than one array holds")] // no image, yet no sample fits an array
    public void Idx_HeadersWhoseSizeOverflows_AreRefused(int n, int rows, int cols, string reason) =>
        Assert.Contains(reason, Refused(() => DatasetReaders.ParseIdxImages(IdxHeader(n, rows, cols), "f")).Message);

    [Fact]
    public void Idx_AGzipBomb_StopsAtTheDeclaredSize()
    {
        // The header declares 10 images of 28×28 (7,856 bytes); the stream goes on with 64 MiB of zeros.
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gz.Write(IdxHeader(10, 28, 28));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) gz.Write(zeros);
        }
        var bomb = ms.ToArray();
        Assert.True(bomb.Length < 200_000);
        Assert.Contains("more than", Refused(() => DatasetReaders.ParseIdxImages(bomb, "f"), maxBytes: 8L << 20).Message);
    }

    [Fact]
    public void Idx_AGzipStreamWithoutItsTrailer_IsRefused()
    {
        var data = IdxHeader(2, 2, 2).Concat(new byte[8]).ToArray();
        var gz = ReaderFuzzTests.Gzip(data);
        DatasetReaders.ParseIdxImages(gz, "f"); // whole, it reads
        Assert.Contains("trailer", Refused(() => DatasetReaders.ParseIdxImages(gz[..^8], "f")).Message);
    }

    [Fact]
    public void HuggingFace_AConfigOfAHundredMillionLayers_IsRefusedAtOnce()
    {
        var dir = TinyBert.Directory(("pytorch_model.bin", TinyBert.TorchBytes(TinyBert.Weights())));
        try
        {
            var config = Regex.Replace(TinyBert.ConfigJson(), "\"num_hidden_layers\": \\d+", "\"num_hidden_layers\": 100000000");
            File.WriteAllText(Path.Combine(dir, "config.json"), config);
            Assert.Contains("more tensors (num_hidden_layers 100000000)", Refused(() => HuggingFaceCheckpoint.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("[PAD]\n[UNK]\n[SEP]\n", "no [CLS] token")]
    [InlineData("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[CLS]\n", "repeats line 3")]
    public void HuggingFace_VocabulariesWithoutSpecialsOrWithDuplicates_AreRefused(string vocab, string reason)
    {
        var dir = TinyBert.Directory(("pytorch_model.bin", TinyBert.TorchBytes(TinyBert.Weights())));
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.txt"), vocab);
            Assert.Contains(reason, Refused(() => HuggingFaceCheckpoint.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Readers_RefuseDevices_InsteadOfReadingForever()
    {
        string dir = Directory.CreateTempSubdirectory("cnet-dev").FullName;
        try
        {
            string link = Path.Combine(dir, "model.safetensors");
            File.CreateSymbolicLink(link, "/dev/zero");
            Assert.Contains("not a regular file", Refused(() => SafeTensorsFile.Read(link)).Message);
            Assert.Contains("not a regular file", Refused(() => DatasetReaders.ReadIdxImages(link)).Message);
            Assert.Contains("not a regular file", Refused(() => BertConfig.Load(link)).Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
