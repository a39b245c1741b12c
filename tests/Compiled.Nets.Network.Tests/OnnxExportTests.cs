using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// Exported networks run in ONNX Runtime and give the compiled network's outputs (≤ 1e-4), at more than one batch size
/// (the batch dimension is symbolic). Networks are first trained a few steps so BatchNorm statistics are not trivial.
/// </summary>
public class OnnxExportTests
{
    private static void AssertOnnxMatches<TNet>(TNet net, int inputSize, Action<float[], int, float[]> forward, Action<string> export, int outputSize, params int[] shape)
    {
        string path = Path.Combine(Path.GetTempPath(), $"cnet-{typeof(TNet).Name}-{Guid.NewGuid():N}.onnx");
        try
        {
            export(path);
            using var session = new InferenceSession(path);
            foreach (int batch in new[] { 1, 5 })
            {
                var x = CompiledVsEagerTests.RandomData(batch * inputSize, (ulong)(batch + 40));
                var expected = new float[batch * outputSize];
                forward(x, batch, expected);
                var input = new DenseTensor<float>(x, [batch, .. shape]);
                using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
                var actual = results.Single(r => r.Name == "output").AsEnumerable<float>().ToArray();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < actual.Length; i++)
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"{typeof(TNet).Name} batch {batch} [{i}]: ONNX Runtime {actual[i]} vs compiled {expected[i]}");
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ConvNet()
    {
        using var net = new ConvNet(seed: 2);
        AssertOnnxMatches(net, 784, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 10, 1, 28, 28);
    }

    [Fact]
    public void Mlp_WithGeluLayerNormTanhSigmoidAndALinearWithoutBias()
    {
        using var net = new Mlp(seed: 3);
        AssertOnnxMatches(net, 20, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 5, 20);
    }

    [Fact]
    public void BnNet_WithTrainedBatchNormStatistics_DilatedStridedConvAndAveragePooling()
    {
        using var net = new BnNet(seed: 4);
        var x = CompiledVsEagerTests.RandomData(6 * 429, 5);
        var y = CompiledVsEagerTests.RandomLabels(6, 4, 6);
        for (int i = 0; i < 3; i++) net.TrainStep(x, y, 6);
        AssertOnnxMatches(net, 429, (x2, b, y2) => net.Forward(x2, b, y2), net.ExportOnnx, 4, 3, 13, 11);
    }

    [Fact]
    public void ResNet_WithInlinedResidualBlocks()
    {
        using var net = new ResNet(seed: 5);
        AssertOnnxMatches(net, 8, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 8);
    }

    [Fact]
    public void ActNet_WithLeakyReluSiluEluAndHardswish()
    {
        using var net = new ActNet(seed: 12);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void GapNet_WithGlobalAndAdaptiveAveragePooling()
    {
        using var net = new GapNet(seed: 14);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void GateNet_WithBroadcastingMultiplyAndSubtract()
    {
        using var net = new GateNet(seed: 16);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void BlockNet_WithInferredBlocksAndSharedWeights()
    {
        using var net = new BlockNet(seed: 18);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void BranchNet_WithConcatenations()
    {
        using var net = new BranchNet(seed: 26);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void SmallResNet_FromParameterisedBlocks()
    {
        using var net = new SmallResNet(seed: 28);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void Bn1dNet_WithTrainedBatchNorm1dStatistics()
    {
        using var net = new Bn1dNet(seed: 30);
        var x = CompiledVsEagerTests.RandomData(8 * net.InputSize, 31);
        net.TrainStep(x, CompiledVsEagerTests.RandomLabels(8, 3, 32), 8); // running statistics away from 0 and 1
        AssertOnnxMatches(net, net.InputSize, (x2, b, y) => net.Forward(x2, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void LogSoftmaxNet()
    {
        using var net = new LogSoftmaxNet(seed: 34);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void PoolBiasNet()
    {
        using var net = new PoolBiasNet(seed: 6);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    /// <summary>A token network in ONNX Runtime against the compiled one, at two (batch, sequence) shapes with padding.</summary>
    private static void AssertTokensMatch(Action<string> export, Func<int[], int[], int, int, float[]> forward, int vocab, bool sequence, int fixedLength = 0, bool withMask = true)
    {
        string path = Path.Combine(Path.GetTempPath(), $"cnet-tokens-{Guid.NewGuid():N}.onnx");
        try
        {
            export(path);
            using var session = new InferenceSession(path);
            foreach (var (batch, seq) in new[] { (1, sequence ? 5 : fixedLength), (3, sequence ? 9 : fixedLength) })
            {
                var rng = new Rng((ulong)(batch * 31 + seq));
                var ids = Enumerable.Range(0, batch * seq).Select(_ => (int)(rng.NextUInt64() % (ulong)vocab)).ToArray();
                // Row b has seq − b real tokens, then padding.
                var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < Math.Max(1, seq - i / seq) ? 1 : 0).ToArray();
                var expected = forward(ids, mask, batch, seq);
                var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input", new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), [batch, seq])) };
                if (withMask) inputs.Add(NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask.Select(i => (long)i).ToArray(), [batch, seq])));
                using var results = session.Run(inputs);
                var actual = results.Single(r => r.Name == "output").AsEnumerable<float>().ToArray();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < actual.Length; i++)
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"batch {batch}, sequence {seq} [{i}]: ONNX Runtime {actual[i]} vs compiled {expected[i]}");
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void MiniBert_WithEmbeddingsMaskedAttentionAndPooler()
    {
        using var net = new MiniBert(seed: 7);
        AssertTokensMatch(net.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * 3]; net.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
    }

    [Fact]
    public void SeqNet_WithTheMaskedMeanOverTheSequence()
    {
        using var net = new SeqNet(seed: 8);
        AssertTokensMatch(net.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * 3]; net.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
    }

    [Fact]
    public void RecurrentNets_AsOnnxLstmAndGru_WithSequenceLengthsFromTheMask()
    {
        // ONNX Runtime's own LSTM/GRU kernels (sequence-first, gate orders iofc and zrh, linear_before_reset) on the
        // exported weights: a stacked bidirectional LSTM, and two GRUs one of which has no biases.
        using var lstm = new LstmNet(seed: 5);
        AssertTokensMatch(lstm.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * 3]; lstm.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
        using var gru = new GruNet(seed: 6);
        AssertTokensMatch(gru.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * 3]; gru.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
    }

    [Fact]
    public void FixedLstmNet_OnAFloatSequenceWithoutAMask()
    {
        using var net = new FixedLstmNet(seed: 7);
        AssertOnnxMatches(net, 28, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 2, 7, 4);
    }

    [Fact]
    public void TwoInputNet_TakesOneGraphInputPerForwardParameter()
    {
        using var net = new TwoInputNet(seed: 3);
        string path = Path.Combine(Path.GetTempPath(), $"cnet-two-inputs-{Guid.NewGuid():N}.onnx");
        try
        {
            net.ExportOnnx(path);
            using var session = new InferenceSession(path);
            Assert.Equal(["image", "meta"], session.InputMetadata.Keys.Order());
            const int batch = 4;
            var image = CompiledVsEagerTests.RandomData(batch * 64, 5);
            var meta = CompiledVsEagerTests.RandomData(batch * 4, 6);
            var expected = new float[batch * 3];
            net.Forward(image, meta, batch, expected);
            using var results = session.Run([
                NamedOnnxValue.CreateFromTensor("image", new DenseTensor<float>(image, [batch, 1, 8, 8])),
                NamedOnnxValue.CreateFromTensor("meta", new DenseTensor<float>(meta, [batch, 4]))]);
            var actual = results.Single(r => r.Name == "output").AsEnumerable<float>().ToArray();
            for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"[{i}]: ONNX Runtime {actual[i]} vs compiled {expected[i]}");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ANetworkWithALossMethod_ExportsItsInferenceGraphAlone()
    {
        using var net = new QuantileNet(seed: 2);
        AssertOnnxMatches(net, 5, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 5);
    }

    [Fact]
    public void TwoHeadNet_HasOneGraphOutputPerTupleElement()
    {
        using var net = new TwoHeadNet(seed: 3);
        string path = Path.Combine(Path.GetTempPath(), $"cnet-two-heads-{Guid.NewGuid():N}.onnx");
        try
        {
            net.ExportOnnx(path);
            using var session = new InferenceSession(path);
            Assert.Equal(["box", "digit", "features"], session.OutputMetadata.Keys.Order());
            const int batch = 5;
            var x = CompiledVsEagerTests.RandomData(batch * 64, 8);
            float[] digit = new float[batch * 3], box = new float[batch * 4], features = new float[batch * 16];
            net.Forward(x, batch, digit, box, features);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x, [batch, 1, 8, 8]))]);
            foreach (var (name, expected) in new[] { ("digit", digit), ("box", box), ("features", features) })
            {
                var actual = results.Single(r => r.Name == name).AsEnumerable<float>().ToArray();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"{name}[{i}]: ONNX Runtime {actual[i]} vs compiled {expected[i]}");
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void PairNet_WithTokenIdsTokenTypesAndTheMask()
    {
        using var net = new PairNet(seed: 4);
        string path = Path.Combine(Path.GetTempPath(), $"cnet-pair-{Guid.NewGuid():N}.onnx");
        try
        {
            net.ExportOnnx(path);
            using var session = new InferenceSession(path);
            const int batch = 3, seq = 7;
            var r = new Rng(9);
            var ids = Enumerable.Range(0, batch * seq).Select(_ => r.NextInt(50)).ToArray();
            var types = Enumerable.Range(0, batch * seq).Select(i => i % seq < 4 ? 0 : 1).ToArray();
            var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - i / seq ? 1 : 0).ToArray();
            var expected = new float[batch * 3];
            net.Forward(ids, types, mask, batch, seq, expected);
            static NamedOnnxValue Longs(string name, int[] v, int b, int t) => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(v.Select(x => (long)x).ToArray(), [b, t]));
            using var results = session.Run([Longs("ids", ids, batch, seq), Longs("types", types, batch, seq), Longs("attention_mask", mask, batch, seq)]);
            var actual = results.Single(x => x.Name == "output").AsEnumerable<float>().ToArray();
            for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"[{i}]: ONNX Runtime {actual[i]} vs compiled {expected[i]}");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ScaleNet_WithArithmeticOnConstants()
    {
        using var net = new ScaleNet(seed: 5);
        AssertOnnxMatches(net, 72, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 2, 6, 6);
    }

    [Fact]
    public void HandAttentionNet_WithReshapeTransposeAndMatMul()
    {
        using var net = new HandAttentionNet(seed: 6);
        AssertOnnxMatches(net, 32, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 4, 8);
    }

    [Fact]
    public void SeqShapeNet_WithShapeMethodsOnASequence()
    {
        using var net = new SeqShapeNet(seed: 7);
        AssertTokensMatch(net.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * 3]; net.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
    }

    [Fact]
    public void ConvVariantsNet_WithNonSquareDepthwiseAndGroupedConvolutions()
    {
        using var net = new ConvVariantsNet(seed: 8);
        AssertOnnxMatches(net, 360, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 4, 9, 10);
    }

    [Fact]
    public void Conv1dNet_WithGroupedDilatedConv1d()
    {
        using var net = new Conv1dNet(seed: 9);
        AssertOnnxMatches(net, 60, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 3, 20);
    }

    [Fact]
    public void UNetStep_WithGroupNormAndResize()
    {
        using var net = new UNetStep(seed: 10);
        AssertOnnxMatches(net, 128, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 2, 8, 8);
    }

    [Fact]
    public void NarrowNet_WithSlices()
    {
        using var net = new NarrowNet(seed: 11);
        AssertOnnxMatches(net, 60, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 2, 5, 6);
    }

    [Fact]
    public void ReduceNet_WithReduceSumAndReduceMean()
    {
        using var net = new ReduceNet(seed: 13);
        AssertOnnxMatches(net, 60, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 3, 4, 5);
    }

    [Fact]
    public void AttentionPoolNet_WithMaskedSoftmaxSumAndMeanOverT()
    {
        using var net = new AttentionPoolNet(seed: 15);
        AssertTokensMatch(net.ExportOnnx, (ids, mask, b, t) => { var y = new float[b * net.OutputSize]; net.Forward(ids, mask, b, t, y); return y; }, 50, sequence: true);
    }

    [Fact]
    public void DecoderNet_WithConvTranspose()
    {
        using var net = new DecoderNet(seed: 17);
        AssertOnnxMatches(net, 128, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 2, 8, 8);
    }

    [Fact]
    public void ReshapeNet_WithReshapes()
    {
        using var net = new ReshapeNet(seed: 16);
        AssertOnnxMatches(net, 12, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 12);
    }

    [Fact]
    public void OneHotTokenNet_WithOneHot()
    {
        using var net = new OneHotTokenNet(seed: 14);
        AssertTokensMatch(net.ExportOnnx, (ids, _, b, _) => { var y = new float[b * net.OutputSize]; net.Forward(ids, b, y); return y; }, 7, sequence: false, fixedLength: 6, withMask: false);
    }

    [Fact]
    public void SoftmaxDimNet_WithSoftmaxAlongOtherAxes()
    {
        using var net = new SoftmaxDimNet(seed: 12);
        AssertOnnxMatches(net, 60, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, 3, 3, 4, 5);
    }

    [Fact]
    public void TokenNet_OfFixedLength()
    {
        using var net = new TokenNet(seed: 9);
        AssertTokensMatch(net.ExportOnnx, (ids, _, b, _) => { var y = new float[b * net.OutputSize]; net.Forward(ids, b, y); return y; }, 10, sequence: false, fixedLength: 12, withMask: false);
    }
}
