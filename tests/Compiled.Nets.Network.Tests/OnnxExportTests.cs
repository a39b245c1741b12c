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
    public void PoolBiasNet()
    {
        using var net = new PoolBiasNet(seed: 6);
        AssertOnnxMatches(net, net.InputSize, (x, b, y) => net.Forward(x, b, y), net.ExportOnnx, net.OutputSize, [.. net.InputShape]);
    }

    [Fact]
    public void SequenceNetworks_SayTheyCannotBeExportedYet()
    {
        using var net = new MiniBert(seed: 1);
        var e = Assert.Throws<NotSupportedException>(() => net.ExportOnnx(Path.Combine(Path.GetTempPath(), "never.onnx")));
        Assert.Contains("MiniBert.ExportOnnx", e.Message);
    }
}
