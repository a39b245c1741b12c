using System.Buffers.Binary;
using System.Text;
using Compiled.Nets.Serialization;
using Compiled.Nets.Training;

namespace Compiled.Nets.Runtime.Tests.Serialization;

public class SafeTensorsTests
{
    private static byte[] Sample()
    {
        var f16 = new byte[4]; BinaryPrimitives.WriteHalfLittleEndian(f16, (Half)1.5f); BinaryPrimitives.WriteHalfLittleEndian(f16.AsSpan(2), (Half)(-2f));
        var bf16 = new byte[4]; BinaryPrimitives.WriteUInt16LittleEndian(bf16, (ushort)(BitConverter.SingleToInt32Bits(3.25f) >> 16)); BinaryPrimitives.WriteUInt16LittleEndian(bf16.AsSpan(2), (ushort)(BitConverter.SingleToInt32Bits(-0.5f) >> 16));
        var i64 = new byte[16]; BinaryPrimitives.WriteInt64LittleEndian(i64, 7); BinaryPrimitives.WriteInt64LittleEndian(i64.AsSpan(8), -3);
        return SafeTensorsFile.Serialize(new[]
        {
            SafeTensor.FromFloats("w", [2, 2], new[] { 1f, -2f, 3.5f, 0f }),
            new SafeTensor("h", SafeTensorDType.F16, [2], f16),
            new SafeTensor("b", SafeTensorDType.BF16, [2], bf16),
            new SafeTensor("n", SafeTensorDType.I64, [2], i64),
            new SafeTensor("scalar", SafeTensorDType.F32, [], new byte[4]),
        }, new Dictionary<string, string> { ["epoch"] = "3" });
    }

    [Fact]
    public void RoundTrip_AllDTypes()
    {
        var (tensors, meta) = SafeTensorsFile.Parse(Sample());
        Assert.Equal("3", meta["epoch"]);
        var t = tensors.ToDictionary(x => x.Name);
        Assert.Equal(new[] { 1f, -2f, 3.5f, 0f }, t["w"].ToFloats());
        Assert.Equal(new[] { 1.5f, -2f }, t["h"].ToFloats());
        Assert.Equal(new[] { 3.25f, -0.5f }, t["b"].ToFloats());
        Assert.Equal(new[] { 7f, -3f }, t["n"].ToFloats());
        Assert.Equal(new[] { 2, 2 }, t["w"].Shape);
        Assert.Empty(t["scalar"].Shape);
    }

    private static byte[] WithHeader(string json, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""", 12, "needs 8 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "outside")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", 8, "overlap")]
    [InlineData("""{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}""", 1, "unsupported dtype")]
    [InlineData("""{"a":{"dtype":"1","shape":[1],"data_offsets":[0,1]}}""", 1, "unsupported dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "invalid dimension")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8, "cover 4 bytes")]
    [InlineData("""[1,2]""", 0, "not a JSON object")]
    [InlineData("""{"a":""", 0, "not valid JSON")]
    public void InvalidHeaders_AreClearErrors(string header, int dataBytes, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(WithHeader(header, dataBytes)));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void HugeHeaderLength_IsRejectedBeforeAllocating()
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue / 2);
        Assert.Contains("exceeds", Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(b)).Message);
    }

    [Fact]
    public void Fuzz_TruncatedAndCorrupted_AlwaysInvalidDataOrValid()
    {
        var good = Sample();
        var rng = new Rng(99);
        for (int len = 0; len < good.Length; len++)
            Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(good.AsSpan(0, len)));
        for (int trial = 0; trial < 3000; trial++)
        {
            var bad = (byte[])good.Clone();
            int flips = 1 + rng.NextInt(4);
            for (int f = 0; f < flips; f++) bad[rng.NextInt(bad.Length)] = (byte)rng.NextInt(256);
            try { SafeTensorsFile.Parse(bad); }
            catch (InvalidDataException) { }
        }
    }

    private static ParameterStore Store(int width)
    {
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [width, 3], ParameterRole.Weight, ParameterInit.Uniform(1));
        b.Add("fc.bias", [width], ParameterRole.Bias, ParameterInit.Zeros);
        b.AddBuffer("bn.running_var", [3], ParameterRole.RunningVar, ParameterInit.Ones);
        var s = b.Build();
        s.Initialize(1);
        return s;
    }

    [Fact]
    public void Checkpoint_RoundTrip_WithOptimizerState()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        string path = Path.Combine(dir, "ck.safetensors");
        using var s = Store(2);
        var opt = new AdamW(s);
        s.Gradients.Fill(0.5f); opt.Step(); opt.Step();
        Checkpoint.Save(path, s, opt, new Dictionary<string, string> { ["epoch"] = "4" });
        using var t = Store(2);
        t.Initialize(123);
        var opt2 = new AdamW(t);
        var meta = Checkpoint.Load(path, t, opt2);
        Assert.Equal(4, Checkpoint.MetadataInt(meta, "epoch"));
        Assert.True(s.Values.SequenceEqual(t.Values));
        Assert.Equal(2, opt2.StepCount);
        s.Gradients.Fill(0.25f); t.Gradients.Fill(0.25f); opt.Step(); opt2.Step();
        Assert.True(s.Values.SequenceEqual(t.Values));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void Checkpoint_OfAnotherNetwork_ListsEveryMismatch()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        string path = Path.Combine(dir, "ck.safetensors");
        using var s = Store(2);
        Checkpoint.Save(path, s);
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [4, 3], ParameterRole.Weight, ParameterInit.Zeros);
        b.Add("head.weight", [1], ParameterRole.Weight, ParameterInit.Zeros);
        using var other = b.Build();
        var ex = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, other));
        Assert.Contains(path, ex.Message);
        Assert.Contains("fc.weight: checkpoint [2, 3] vs network [4, 3]", ex.Message);
        Assert.Contains("missing head.weight", ex.Message);
        Assert.Contains("unexpected fc.bias", ex.Message);
    }

    [Fact]
    public void CrashMidSave_LeavesThePreviousCheckpointIntact()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        string path = Path.Combine(dir, "last.safetensors");
        using var s = Store(2);
        Checkpoint.Save(path, s);
        var before = File.ReadAllBytes(path);
        // A save that dies half-way: a tensor whose data does not match its shape throws inside serialisation,
        // and the write of a read-only folder fails at the temp file; neither may touch the existing file.
        Assert.ThrowsAny<Exception>(() => SafeTensorsFile.Write(path, new[] { new SafeTensor("x", SafeTensorDType.F32, [1000], new byte[8]) }));
        Assert.Equal(before, File.ReadAllBytes(path));
        using var t = Store(2);
        Checkpoint.Load(path, t);
        Assert.True(s.Values.SequenceEqual(t.Values));
    }
}
