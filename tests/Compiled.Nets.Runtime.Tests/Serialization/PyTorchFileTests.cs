using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Runtime.Tests.Serialization;

public class PyTorchFileTests
{
    private static IReadOnlyList<SafeTensor> Parse(byte[] bytes, bool toFloat32 = false) =>
        PyTorchFile.Read(new MemoryStream(bytes), "pytorch_model.bin", toFloat32);

    private static InvalidDataException Rejects(byte[] bytes) => Assert.Throws<InvalidDataException>(() => Parse(bytes));

    private static float[] Iota(int n, float scale = 1) => Enumerable.Range(0, n).Select(i => i * scale - 3.25f).ToArray();

    [Theory]
    [InlineData(2, "archive")]
    [InlineData(2, "pytorch_model")]
    [InlineData(4, "archive")]
    public void TinyBert_RoundTripsEveryValueExactly(int protocol, string top)
    {
        var w = TinyBert.Weights();
        var sd = w.Select((kv, i) => (kv.Key, TorchTensor.Contiguous(TorchStorage.Floats(i.ToString(), kv.Value.Values), kv.Value.Shape))).ToList();
        var tensors = Parse(TorchSave.Save(sd, protocol, top));
        Assert.Equal(w.Keys, tensors.Select(t => t.Name)); // state-dict order kept
        foreach (var t in tensors)
        {
            Assert.Equal(SafeTensorDType.F32, t.DType);
            Assert.Equal(w[t.Name].Shape, t.Shape);
            Assert.Equal(w[t.Name].Values.Select(BitConverter.SingleToInt32Bits), t.ToFloats().Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void CPythonPickled_Fixture_IsReadAsTorchWouldRebuildIt()
    {
        // Written by Fixtures/make_torch_fixture.py with CPython's own pickler (protocol 2, torch.save's layout with
        // 64-byte aligned entries and a top folder named after the file).
        var t = PyTorchFile.Read(Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures", "tiny_torch_save.bin")).ToDictionary(x => x.Name);
        float[] w = [-1, -0.5f, 0, 0.5f, 1, 1.5f];
        Assert.Equal(["bert.pooler.dense.weight", "bert.pooler.dense.weight_t", "row1", "half", "bert.embeddings.position_ids", "scalar"], t.Keys);
        Assert.Equal(w, t["bert.pooler.dense.weight"].ToFloats());
        Assert.Equal(new[] { 2, 3 }, t["bert.pooler.dense.weight"].Shape);
        Assert.Equal(new[] { w[0], w[3], w[1], w[4], w[2], w[5] }, t["bert.pooler.dense.weight_t"].ToFloats());
        Assert.Equal(w[3..], t["row1"].ToFloats());
        Assert.Equal(SafeTensorDType.F16, t["half"].DType);
        Assert.Equal(new[] { 1.5f, -0.25f, 65504f }, t["half"].ToFloats());
        Assert.Equal(SafeTensorDType.I64, t["bert.embeddings.position_ids"].DType);
        Assert.Equal(new[] { 1, 4 }, t["bert.embeddings.position_ids"].Shape);
        Assert.Equal(new float[] { 0, 1, 2, 3 }, t["bert.embeddings.position_ids"].ToFloats());
        Assert.Equal(w[5], Assert.Single(t["scalar"].ToFloats()));
    }

    [Fact]
    public void File_ReadsFromDisk_AndMissingFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), "cn-pt-" + Guid.NewGuid().ToString("N") + ".bin");
        File.WriteAllBytes(path, TinyBert.TorchBytes(TinyBert.Weights()));
        try { Assert.Equal(TinyBert.Shapes().Count, PyTorchFile.Read(path).Count); }
        finally { File.Delete(path); }
        var ex = Assert.Throws<FileNotFoundException>(() => PyTorchFile.Read(path));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void ForwardOnlyStream_IsBuffered()
    {
        var w = TinyBert.Weights();
        Assert.Equal(w.Count, PyTorchFile.Read(new ForwardOnlyStream(TinyBert.TorchBytes(w)), "pipe").Count);
    }

    [Fact]
    public void TransposedView_IsGathered()
    {
        // w.t() of a 2×3 matrix: size (3, 2), stride (1, 3).
        var s = TorchStorage.Floats("0", [1, 2, 3, 4, 5, 6]);
        var t = Assert.Single(Parse(TorchSave.Save([("wt", new TorchTensor(s, 0, [3, 2], [1, 3]))])));
        Assert.Equal(new[] { 3, 2 }, t.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, t.ToFloats());
    }

    [Fact]
    public void OffsetAndStridedViews_OfOneStorage_AndSharedStorage()
    {
        var s = TorchStorage.Floats("7", Iota(24));
        var tensors = Parse(TorchSave.Save(
        [
            ("row2", TorchTensor.Contiguous(s, [6], offset: 12)),                 // x[2] of a 4×6
            ("col1", new TorchTensor(s, 1, [4], [6])),                           // x[:, 1]
            ("sub", new TorchTensor(s, 1, [2, 2, 2], [12, 6, 2])),               // x.view(2,2,6)[..., 1::2][..., :2]
            ("tied_a", TorchTensor.Contiguous(s, [4, 6])),                       // tied weights: same storage twice
            ("tied_b", TorchTensor.Contiguous(s, [4, 6])),
            ("scalar", new TorchTensor(s, 5, [], [])),
            ("empty", new TorchTensor(s, 0, [0, 6], [6, 1])),
        ])).ToDictionary(t => t.Name);
        var all = Iota(24);
        Assert.Equal(all[12..18], tensors["row2"].ToFloats());
        Assert.Equal(new[] { all[1], all[7], all[13], all[19] }, tensors["col1"].ToFloats());
        Assert.Equal(new[] { 1, 3, 7, 9, 13, 15, 19, 21 }.Select(i => all[i]), tensors["sub"].ToFloats());
        Assert.Equal(all, tensors["tied_a"].ToFloats());
        Assert.Equal(all, tensors["tied_b"].ToFloats());
        Assert.NotSame(tensors["tied_a"].Data, tensors["tied_b"].Data); // independent copies: fine-tuning one leaves the other
        Assert.Equal(all[5], Assert.Single(tensors["scalar"].ToFloats()));
        Assert.Empty(tensors["empty"].ToFloats());
    }

    [Fact]
    public void HalfBFloat16Double_AndIntegerStorages_ConvertOnRequest()
    {
        float[] v = [1.5f, -2.25f, 0.125f, 256f]; // exact in F16 and BF16
        var f16 = new byte[8]; var bf16 = new byte[8]; var f64 = new byte[32]; var i64 = new byte[32];
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(f16.AsSpan(i * 2), (Half)v[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bf16.AsSpan(i * 2), (ushort)(BitConverter.SingleToInt32Bits(v[i]) >> 16));
            BinaryPrimitives.WriteDoubleLittleEndian(f64.AsSpan(i * 8), v[i]);
            BinaryPrimitives.WriteInt64LittleEndian(i64.AsSpan(i * 8), i - 1);
        }
        var sd = new List<(string, TorchTensor)>
        {
            ("h", TorchTensor.Contiguous(new TorchStorage("0", "HalfStorage", f16, 4), [2, 2])),
            ("b", new TorchTensor(new TorchStorage("1", "BFloat16Storage", bf16, 4), 0, [2, 2], [1, 2])), // transposed bf16
            ("d", TorchTensor.Contiguous(new TorchStorage("2", "DoubleStorage", f64, 4), [4])),
            ("position_ids", TorchTensor.Contiguous(new TorchStorage("3", "LongStorage", i64, 4), [1, 4])),
        };
        var raw = Parse(TorchSave.Save(sd)).ToDictionary(t => t.Name);
        Assert.Equal(SafeTensorDType.F16, raw["h"].DType);
        Assert.Equal(SafeTensorDType.BF16, raw["b"].DType);
        Assert.Equal(SafeTensorDType.F64, raw["d"].DType);
        var conv = Parse(TorchSave.Save(sd), toFloat32: true).ToDictionary(t => t.Name);
        Assert.Equal(v, conv["h"].ToFloats());
        Assert.Equal(SafeTensorDType.F32, conv["h"].DType);
        Assert.Equal(new[] { v[0], v[2], v[1], v[3] }, conv["b"].ToFloats());
        Assert.Equal(v, conv["d"].ToFloats());
        Assert.Equal(SafeTensorDType.I64, conv["position_ids"].DType); // integers are not floats to convert
        Assert.Equal(new float[] { -1, 0, 1, 2 }, conv["position_ids"].ToFloats());
    }

    [Fact]
    public void ParametersMetadataArgAndBigEndian_AreUnderstood()
    {
        float[] v = [1, -2, 3.5f];
        var s = TorchStorage.Floats("0", v);
        var sd = new List<(string, TorchTensor)> { ("p", TorchTensor.Contiguous(s, [3])) };
        Assert.Equal(v, Parse(TorchSave.Save(sd, asParameters: true)).Single().ToFloats());
        Assert.Equal(v, Parse(TorchSave.Save(sd, withMetadataArg: true)).Single().ToFloats());
        var be = s.Bytes.ToArray();
        for (int i = 0; i < be.Length; i += 4) be.AsSpan(i, 4).Reverse();
        var bigSd = new List<(string, TorchTensor)> { ("p", TorchTensor.Contiguous(s with { Bytes = be }, [3])) };
        Assert.Equal(v, Parse(TorchSave.Save(bigSd, byteorder: "big")).Single().ToFloats());
    }

    // ---- malicious pickles: rejected with the global named, nothing run ----

    private static byte[] Malicious(string module, string name, int protocol = 2, string arg = "touch /tmp/cn-pwned")
    {
        var w = new PickleWriter(protocol).Proto().Global(module, name).Str(arg).Tuple(1).Reduce().Stop();
        return TorchSave.Archive(w.ToArray(), []);
    }

    [Theory]
    [InlineData("os", "system", 2)]
    [InlineData("posix", "system", 4)]
    [InlineData("builtins", "eval", 2)]
    [InlineData("builtins", "exec", 4)]
    [InlineData("torch.storage", "_load_from_bytes", 2)]
    [InlineData("torch", "load", 2)]
    [InlineData("subprocess", "Popen", 4)]
    public void GlobalsOffTheAllowList_AreRejected_WithNameAndOffset(string module, string name, int protocol)
    {
        string marker = Path.Combine(Path.GetTempPath(), "cn-pwned-" + Guid.NewGuid().ToString("N"));
        var ex = Rejects(Malicious(module, name, protocol, "touch " + marker));
        Assert.Contains($"{module}.{name}", ex.Message);
        Assert.Contains("not on the allow-list", ex.Message);
        Assert.StartsWith("pytorch_model.bin: archive/data.pkl at byte ", ex.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void MaliciousGlobal_InsideARealStateDict_IsRejectedAtItsOffset()
    {
        // A valid state dict whose second value is os.system(...) instead of a tensor.
        var w = new PickleWriter().Proto();
        w.Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark().Str("a");
        TorchSave.Tensor(w, TorchTensor.Contiguous(TorchStorage.Floats("0", [1f]), [1]));
        w.Str("b");
        int offset = (int)w.ToArray().Length;
        w.Global("os", "system").Str("echo hi").Tuple(1).Reduce().SetItems().Stop();
        var ex = Rejects(TorchSave.Archive(w.ToArray(), [TorchStorage.Floats("0", [1f])]));
        Assert.True(ex.Message.Contains($"at byte {offset} references os.system"), ex.Message);
    }

    [Fact]
    public void AllowListedNames_CannotBeCalledOtherwise()
    {
        // torch.FloatStorage is allowed as a value (persistent ids name it) but REDUCE on it is not a constructor call.
        var w = new PickleWriter().Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop();
        Assert.Contains("REDUCE of torch.FloatStorage is not supported", Rejects(TorchSave.Archive(w.ToArray(), [])).Message);
    }

    // ---- malformed files ----

    private static byte[] Pickle(Action<PickleWriter> body)
    {
        var w = new PickleWriter().Proto();
        body(w);
        return TorchSave.Archive(w.ToArray(), [TorchStorage.Floats("0", [1f, 2f])]);
    }

    [Theory]
    [InlineData("unknown", "opcode 0xff is not supported")]
    [InlineData("underflow", "stack underflow")]
    [InlineData("memo", "memo entry 9 was never stored")]
    [InlineData("nostop", "truncated")]
    [InlineData("notdict", "holds a list, not a state dict")]
    [InlineData("nottensor", "entry 'x' is a int, not a tensor")]
    [InlineData("badpid", "persistent id must be ('storage'")]
    [InlineData("shortstorage", "reaches element 4, but storage '0' (FloatStorage) has 2 elements")]
    [InlineData("badoffset", "reaches element 2")]
    [InlineData("rank", "different ranks")]
    [InlineData("args", "_rebuild_tensor_v2 expects 6 or 7 arguments")]
    public void MalformedPickles_SayWhatIsWrong(string kind, string expected)
    {
        var s = TorchStorage.Floats("0", [1f, 2f]);
        byte[] file = kind switch
        {
            "unknown" => Pickle(w => w.Op(0xff)),
            "underflow" => Pickle(w => w.Op(0x86)),
            "memo" => Pickle(w => w.Op((byte)'h').Op(9)),
            "nostop" => Pickle(w => w.EmptyDict()),
            "notdict" => Pickle(w => w.Op((byte)']').Stop()),
            "nottensor" => Pickle(w => w.EmptyDict().Str("x").Int(3).SetItem().Stop()),
            "badpid" => Pickle(w => w.Mark().Str("module").Str("x").Tuple(2).PersId().Stop()),
            "shortstorage" => TorchSave.Save([("w", TorchTensor.Contiguous(s, [5]))]),
            "badoffset" => TorchSave.Save([("w", TorchTensor.Contiguous(s, [1], offset: 2))]),
            "rank" => TorchSave.Save([("w", new TorchTensor(s, 0, [2], [1, 1]))]),
            _ => Pickle(w => w.EmptyDict().Str("w").Global("torch._utils", "_rebuild_tensor_v2").Int(1).Tuple(1).Reduce().SetItem().Stop()),
        };
        Assert.Contains(expected, Rejects(file).Message);
    }

    [Fact]
    public void StorageEntries_MustMatchTheirDeclaredSize_AndExist()
    {
        var s = TorchStorage.Floats("0", [1f, 2f, 3f]);
        var pkl = TorchSave.StateDict([("w", TorchTensor.Contiguous(s, [3]))]);
        var shortEntry = TorchSave.Archive(pkl, [s with { Bytes = s.Bytes[..10] }]);
        Assert.Contains("archive/data/0 holds 10 bytes, but its FloatStorage declares 3 elements (12 bytes)", Rejects(shortEntry).Message);
        Assert.Contains("uses storage '0', but archive/data/0 is missing", Rejects(TorchSave.Archive(pkl, [])).Message);
    }

    [Fact]
    public void NotAZip_AndLegacyFormat_AreNamed()
    {
        Assert.Contains("legacy", Rejects([0x80, 0x02, 0x8a, 0x0a]).Message);
        Assert.Contains("not a readable zip", Rejects(Encoding.ASCII.GetBytes("hello, this is text")).Message);
        Assert.Contains("no <top>/data.pkl", Rejects(NoPickle()).Message);

        static byte[] NoPickle()
        {
            using var ms = new MemoryStream();
            using (var z = new ZipArchive(ms, ZipArchiveMode.Create, true)) z.CreateEntry("archive/version");
            return ms.ToArray();
        }
    }

    /// <summary>CN_FUZZ_ITERATIONS runs a longer fuzz by hand; the default keeps the suite fast.</summary>
    private static int FuzzIterations(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("CN_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : fallback;

    [Fact]
    public void Fuzz_FlipsAndTruncations_OnlyInvalidDataExceptionEscapes()
    {
        var s = TorchStorage.Floats("0", Iota(12));
        var valid = TorchSave.Save(
        [
            ("a", TorchTensor.Contiguous(s, [3, 4])),
            ("b", new TorchTensor(s, 1, [2, 2], [1, 4])),
            ("c", TorchTensor.Contiguous(TorchStorage.Floats("1", [5f, 6f]), [2])),
        ]);
        // Bias the flips toward the pickle, where most of the structure is (it starts after the first local header).
        int pklStart = 30 + "archive/data.pkl".Length, pklLen = TorchSave.StateDict([]).Length + 200;
        var rng = new Random(1234);
        int rejected = 0, n = FuzzIterations(400);
        for (int iter = 0; iter < n; iter++)
        {
            byte[] b;
            if (iter % 4 == 0) b = valid[..rng.Next(valid.Length)];
            else
            {
                b = valid.ToArray();
                int flips = 1 + rng.Next(3);
                for (int f = 0; f < flips; f++)
                {
                    int at = iter % 4 == 3 ? rng.Next(b.Length) : pklStart + rng.Next(Math.Min(pklLen, b.Length - pklStart));
                    b[at] = (byte)rng.Next(256);
                }
            }
            try { Parse(b); }
            catch (InvalidDataException e)
            {
                Assert.StartsWith("pytorch_model.bin: ", e.Message);
                rejected++;
            }
        }
        Assert.True(rejected > n * 3 / 8, $"only {rejected} of {n} corruptions were detected");
    }

    [Fact]
    public void Fuzz_PickleBytes_InAValidZip_OnlyInvalidDataExceptionEscapes()
    {
        // Corrupt data.pkl itself and re-zip it, so the zip layer (and any CRC check) passes and the unpickler sees it.
        var s = TorchStorage.Floats("0", Iota(12));
        var sd = new List<(string, TorchTensor)> { ("a", TorchTensor.Contiguous(s, [3, 4])), ("b", new TorchTensor(s, 1, [2, 2], [1, 4])) };
        var rng = new Random(99);
        var messages = new HashSet<string>();
        for (int iter = 0; iter < FuzzIterations(300); iter++)
        {
            var pkl = TorchSave.StateDict(sd, protocol: iter % 2 == 0 ? 2 : 4);
            if (iter % 5 == 0) pkl = pkl[..rng.Next(pkl.Length)];
            else for (int f = 1 + rng.Next(3); f > 0; f--) pkl[rng.Next(pkl.Length)] = (byte)rng.Next(256);
            try { Parse(TorchSave.Archive(pkl, [s])); }
            catch (InvalidDataException e)
            {
                Assert.StartsWith("pytorch_model.bin: ", e.Message);
                messages.Add(e.Message);
            }
        }
        Assert.True(messages.Count > 10, $"only {messages.Count} distinct failures");
    }
}

/// <summary>A stream that cannot seek, like a network or pipe stream.</summary>
file sealed class ForwardOnlyStream(byte[] bytes) : MemoryStream(bytes)
{
    public override bool CanSeek => false;
}
