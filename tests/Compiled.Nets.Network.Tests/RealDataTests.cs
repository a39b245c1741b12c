using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>End to end on real data: the compiled ConvNet learns Fashion-MNIST (the subset shipped with the sample).</summary>
public class RealDataTests
{
    // Found from the test binary, not [CallerFilePath]: CI builds map source paths to /_/ (ContinuousIntegrationBuild).
    private static string DataDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Compiled.Nets.sln not found above " + AppContext.BaseDirectory),
            "samples", "FashionMnist", "data");
    }

    /// <summary>1,500 training images and the first <paramref name="testCount"/> test images, normalised by the former.</summary>
    private static (Dataset Train, Dataset Test) Data(int testCount)
    {
        string d = DataDir();
        var train = DatasetReaders.ReadIdx(Path.Combine(d, "train-images-idx3-ubyte.gz"), Path.Combine(d, "train-labels-idx1-ubyte.gz"), 10).Take(1500);
        var test = DatasetReaders.ReadIdx(Path.Combine(d, "t10k-images-idx3-ubyte.gz"), Path.Combine(d, "t10k-labels-idx1-ubyte.gz"), 10).Take(testCount);
        var (mean, std) = train.ChannelStatistics();
        train.Normalize(mean, std); test.Normalize(mean, std);
        return (train, test);
    }

    /// <summary>One short epoch of AdamW (lr 1e-3, batch 32).</summary>
    private static void TrainBriefly(ConvNet net, Dataset train) =>
        new Trainer(net, new AdamW(net.Parameters, 1e-3f), new TrainerOptions { Epochs = 1 }).Fit(new DataLoader(train, 32, seed: 1), null);

    [Fact]
    public void ConvNet_TrainedBrieflyOnRealFashionMnist_GainsClearAccuracy()
    {
        var (train, test) = Data(500);
        using var net = new ConvNet(seed: 42);
        var testLoader = new DataLoader(test, 100, shuffle: false);
        var (_, before) = Trainer.Evaluate(net, testLoader);
        TrainBriefly(net, train);
        var confusion = new ConfusionMatrix(10);
        var (_, after) = Trainer.Evaluate(net, testLoader, confusion);

        Assert.InRange(before, 0.0, 0.3);          // an untrained net is near chance (10 classes)
        Assert.True(after > 0.65, $"test accuracy {after:P1} after one short epoch (before: {before:P1})");
        Assert.Equal(500, confusion.Total);        // accuracy is over samples, not batches
    }

    [Fact]
    public void ConvNet_ReadOnlyBFloat16Inference_KeepsItsAccuracyOnRealFashionMnist()
    {
        var (train, test) = Data(1000);
        using var net = new ConvNet(seed: 42);
        TrainBriefly(net, train);

        // Batch 1, image by image: the path that reads bfloat16 weights.
        float[] Logits()
        {
            var all = new float[test.Count * 10];
            for (int i = 0; i < test.Count; i++) net.Forward(test.Sample(i), 1, all.AsSpan(i * 10, 10));
            return all;
        }
        var full = Logits();
        net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
        var half = Logits();
        int agree = 0, rightFull = 0, rightHalf = 0;
        for (int i = 0; i < test.Count; i++)
        {
            int a = ArgMax(full.AsSpan(i * 10, 10)), b = ArgMax(half.AsSpan(i * 10, 10));
            agree += a == b ? 1 : 0; rightFull += a == test.Labels[i] ? 1 : 0; rightHalf += b == test.Labels[i] ? 1 : 0;
        }
        Assert.NotEqual(full, half);                                    // the bfloat16 weights were read
        Assert.True(agree >= 0.99 * test.Count, $"predictions agree on {agree} of {test.Count}");
        Assert.True(Math.Abs(rightFull - rightHalf) <= 0.005 * test.Count, $"accuracy {rightFull} vs {rightHalf} of {test.Count}");
        Assert.True(rightFull > 0.65 * test.Count, $"float32 accuracy {rightFull} of {test.Count}");
        net.Parameters.MakeWritable();
        Assert.Equal(full, Logits());                                    // back to the float32 weights, bit for bit
    }

    [Fact]
    public void ConvNet_ReadOnlyFloat32Inference_SkipsZeroInputs_AndMatchesTheWritableResult()
    {
        var (train, test) = Data(1000);
        using var net = new ConvNet(seed: 42);
        TrainBriefly(net, train);
        float[] Logits(int batch)
        {
            var all = new float[test.Count * 10];
            for (int i = 0; i + batch <= test.Count; i += batch)
                net.Forward(test.Samples.AsSpan(i * 784, batch * 784), batch, all.AsSpan(i * 10, batch * 10));
            return all;
        }
        var dense1 = Logits(1); var dense4 = Logits(4);
        net.Parameters.MakeReadOnly();
        var sparse1 = Logits(1); var sparse4 = Logits(4);
        // fc1's input is a ReLU's output, mostly zeros once trained: the transposed copy ran (another summation order,
        // so not the same bits), and agrees with the dense product to float32 rounding.
        Assert.NotEqual(dense1, sparse1);
        Assert.NotEqual(dense4, sparse4);
        for (int i = 0; i < dense1.Length; i++)
        {
            Assert.True(Math.Abs(dense1[i] - sparse1[i]) <= 1e-4f * (1 + Math.Abs(dense1[i])), $"batch 1, logit {i}: {sparse1[i]} vs {dense1[i]}");
            Assert.True(Math.Abs(dense4[i] - sparse4[i]) <= 1e-4f * (1 + Math.Abs(dense4[i])), $"batch 4, logit {i}: {sparse4[i]} vs {dense4[i]}");
        }
        var x = test.Samples.AsSpan(0, 784).ToArray(); var y = new float[10];
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() => net.Forward(x, 1, y)));
        net.Parameters.MakeWritable();
        Assert.Equal(dense1, Logits(1));
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
