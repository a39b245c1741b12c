using Compiled.Nets;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// [Weights]: the build checked the fixture's tensors against the network (this project compiles only because they
/// fit); LoadWeights loads them, and a file that changed since the build is a clear error.
/// </summary>
public class WeightsFileTests
{
    [Fact]
    public void LoadWeights_LoadsTheCheckedFile_AndTheNetworkComputesWithIt()
    {
        using var net = new WeightsMlp(seed: 9);
        Assert.EndsWith("Fixtures/weights/tiny-mlp.safetensors", WeightsMlp.WeightsFile.Replace('\\', '/'));
        net.LoadWeights();
        // The fixture's values: (i + 1) / 100, negated for the biases.
        Assert.Equal(Enumerable.Range(1, 12).Select(i => i / 100f), net.Parameters.ReadValue(net.Parameters["fc1.weight"]).ToArray());
        Assert.Equal(new[] { -0.01f, -0.02f }, net.Parameters.ReadValue(net.Parameters["fc2.bias"]).ToArray());
        float[] x = [1f, -2f, 0.5f, 3f], y = new float[2];
        net.Forward(x, 1, y);
        // By hand: h = relu(W1 x + b1), out = W2 h + b2.
        var w1 = Enumerable.Range(1, 12).Select(i => i / 100.0).ToArray();
        var h = Enumerable.Range(0, 3).Select(r => Math.Max(0, Enumerable.Range(0, 4).Sum(c => w1[r * 4 + c] * x[c]) - (r + 1) / 100.0)).ToArray();
        var w2 = Enumerable.Range(1, 6).Select(i => i / 100.0).ToArray();
        for (int o = 0; o < 2; o++) Assert.Equal(Enumerable.Range(0, 3).Sum(r => w2[o * 3 + r] * h[r]) - (o + 1) / 100.0, y[o], 5);
    }

    [Fact]
    public void LoadWeights_ReadsAShardedHuggingFaceIndex()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"cnet-shards-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            float[] Values(int n, float scale) => Enumerable.Range(0, n).Select(i => scale * (i + 1)).ToArray();
            SafeTensorsFile.Write(Path.Combine(dir, "model-1.safetensors"), [SafeTensor.FromFloats("fc1.weight", [3, 4], Values(12, 0.1f)), SafeTensor.FromFloats("fc1.bias", [3], Values(3, 0.2f))]);
            SafeTensorsFile.Write(Path.Combine(dir, "model-2.safetensors"), [SafeTensor.FromFloats("fc2.weight", [2, 3], Values(6, 0.3f)), SafeTensor.FromFloats("fc2.bias", [2], Values(2, 0.4f))]);
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                """{"weight_map": {"fc1.weight": "model-1.safetensors", "fc1.bias": "model-1.safetensors", "fc2.weight": "model-2.safetensors", "fc2.bias": "model-2.safetensors"}}""");
            using var net = new WeightsMlp();
            net.LoadWeights(Path.Combine(dir, "model.safetensors.index.json"));
            Assert.Equal(Values(6, 0.3f), net.Parameters.ReadValue(net.Parameters["fc2.weight"]).ToArray());
            Assert.Equal(Values(3, 0.2f), net.Parameters.ReadValue(net.Parameters["fc1.bias"]).ToArray());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void AFileThatChangedSinceTheBuild_IsAnErrorNamingTheTensor()
    {
        string path = Path.Combine(Path.GetTempPath(), $"cnet-weights-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Write(path, [SafeTensor.FromFloats("fc1.weight", [3, 5], new float[15]), SafeTensor.FromFloats("fc1.bias", [3], new float[3])]);
            using var net = new WeightsMlp();
            var ex = Assert.Throws<InvalidDataException>(() => net.LoadWeights(path));
            Assert.Contains("'fc1.weight' is [3, 5] in the file but [3, 4] in WeightsMlp", ex.Message);
            Assert.Contains("no tensor 'fc2.weight'", ex.Message);
        }
        finally { File.Delete(path); }
    }
}
