using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

public class RuntimeBehaviourTests
{
    [Fact]
    public void TrainStepOptimizerStepAndForward_AllocateNothing_AfterWarmUp()
    {
        using var net = new ConvNet(seed: 1);
        var x = CompiledVsEagerTests.RandomData(8 * 784, 1);
        var labels = CompiledVsEagerTests.RandomLabels(8, 10, 2);
        var logits = new float[8 * 10];
        var opt = new Compiled.Nets.Training.AdamW(net.Parameters);
        net.TrainStep(x, labels, 8, logits);
        opt.Step();
        net.Forward(x, 8, logits);
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() =>
        {
            net.TrainStep(x, labels, 8, logits);
            opt.Step();
            net.Forward(x, 8, logits);
            net.TrainStep(x.AsSpan(0, 5 * 784), labels.AsSpan(0, 5), 5, logits.AsSpan(0, 50)); // a smaller batch reuses the workspace
        }, repeats: 1));
    }

    [Fact]
    public void ReadOnlyBFloat16Forward_AllocatesNothing_AfterItsCopiesExist_AndLargeBatchesStayFloat32()
    {
        using var net = new ConvNet(seed: 4);
        var x = CompiledVsEagerTests.RandomData(8 * 784, 7);
        var y8 = new float[80]; var y1 = new float[10];
        net.Forward(x, 8, y8);
        net.Forward(x.AsSpan(0, 784), 1, y1);
        var float8 = (float[])y8.Clone(); var float1 = (float[])y1.Clone();
        net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
        net.Forward(x.AsSpan(0, 784), 1, y1);                 // makes the copies
        Assert.NotEqual(float1, y1);
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() => net.Forward(x.AsSpan(0, 784), 1, y1)));
        net.Forward(x, 8, y8);
        Assert.Equal(float8, y8);                             // batches above 4 are bound by arithmetic: float32 weights
        // Serving weights are not trained: a step would move the BatchNorm statistics and the gradients' users.
        var before = net.Parameters.ReadValues.ToArray();
        var e = Assert.Throws<InvalidOperationException>(() => net.TrainStep(x, CompiledVsEagerTests.RandomLabels(8, 10, 8), 8));
        Assert.Contains("MakeWritable()", e.Message);
        Assert.Equal(before, net.Parameters.ReadValues.ToArray());
        var opt = new Compiled.Nets.Training.AdamW(net.Parameters);
        Assert.Throws<InvalidOperationException>(() => opt.Step());
        net.Forward(x, 8, y8);
        Assert.Equal(float8, y8);
    }

    [Fact]
    public void TrainStep_ReplacesStaleGradients_AndClearsFrozenOnes()
    {
        // Some gradients (fc weights, maxpool/conv/linear inputs) are written rather than cleared and accumulated:
        // whatever the buffers held before a step must not leak into it.
        using var net = new ConvNet(seed: 3);
        var x = CompiledVsEagerTests.RandomData(4 * 784, 5);
        var labels = CompiledVsEagerTests.RandomLabels(4, 10, 6);
        net.TrainStep(x, labels, 4);
        var first = net.Parameters.Gradients.ToArray();
        Assert.Contains(first, v => v != 0f);
        net.Parameters.Gradients.Fill(float.NaN);
        net.TrainStep(x, labels, 4);
        Assert.Equal(first, net.Parameters.Gradients.ToArray());

        net.Parameters.Freeze("fc1.");
        net.Parameters.Gradients.Fill(float.NaN);
        net.TrainStep(x, labels, 4);
        Assert.All(net.Parameters.Gradient(net.Parameters["fc1.weight"]).ToArray(), v => Assert.Equal(0f, v));
        var fc2 = net.Parameters.Gradient(net.Parameters["fc2.weight"]).ToArray();
        Assert.Equal(first.AsSpan(net.Parameters["fc2.weight"].Offset, fc2.Length).ToArray(), fc2);
    }

    [Fact]
    public void WrongInputLength_NamesExpectedAndActualShapes()
    {
        using var net = new ConvNet();
        var ex = Assert.Throws<ArgumentException>(() => net.Forward(new float[700], 1, new float[10]));
        Assert.Contains("700", ex.Message);
        Assert.Contains("[1, 28, 28]", ex.Message);
        Assert.Contains("784", ex.Message);
        Assert.Throws<ArgumentException>(() => net.TrainStep(new float[784 * 2], new int[3], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(new float[0], 0, new float[0]));
    }

    [Fact]
    public void LabelOutOfRange_IsAClearError()
    {
        using var net = new ConvNet();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => net.TrainStep(new float[784], new[] { 10 }, 1));
        Assert.Contains("Label 10", ex.Message);
    }

    [Fact]
    public void FrozenParameters_GetNoGradient_OthersDo()
    {
        using var net = new ConvNet(seed: 3);
        net.Parameters.Freeze("conv1.", "conv2.", "fc1.");
        var x = CompiledVsEagerTests.RandomData(2 * 784, 1);
        net.TrainStep(x, new[] { 1, 2 }, 2);
        foreach (var p in net.Parameters.Parameters)
        {
            bool anyGrad = net.Parameters.Gradient(p).ToArray().Any(v => v != 0);
            Assert.Equal(p.Name.StartsWith("fc2.", StringComparison.Ordinal), anyGrad);
        }
    }

    [Fact]
    public void ParameterTable_HasPyTorchNamesShapesAndDefaultInit()
    {
        using var net = new ConvNet(seed: 9);
        var names = net.Parameters.Parameters.Select(p => $"{p.Name} {p.ShapeText}").ToArray();
        Assert.Equal(new[]
        {
            "conv1.weight [64, 1, 3, 3]", "conv1.bias [64]", "conv2.weight [128, 64, 3, 3]", "conv2.bias [128]",
            "fc1.weight [512, 6272]", "fc1.bias [512]", "fc2.weight [10, 512]", "fc2.bias [10]",
        }, names);
        // kaiming_uniform(a=√5): U(±1/√fan_in); fc1 fan_in = 6272.
        var w = net.Parameters.Value(net.Parameters["fc1.weight"]).ToArray();
        float bound = 1f / MathF.Sqrt(6272);
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.True(w.Max() > 0.9f * bound && w.Min() < -0.9f * bound);
        // Same seed, same weights; another seed, other weights.
        using var same = new ConvNet(seed: 9);
        using var other = new ConvNet(seed: 10);
        Assert.True(net.Parameters.Values.SequenceEqual(same.Parameters.Values));
        Assert.False(net.Parameters.Values.SequenceEqual(other.Parameters.Values));
    }

    [Fact]
    public void TrainingLowersTheLoss_OnAFixedBatch()
    {
        using var net = new Mlp(seed: 1);
        var x = CompiledVsEagerTests.RandomData(16 * 20, 4);
        var y = CompiledVsEagerTests.RandomLabels(16, 5, 5);
        float first = net.TrainStep(x, y, 16), last = first;
        for (int step = 0; step < 200; step++)
        {
            last = net.TrainStep(x, y, 16);
            var v = net.Parameters.Values; var g = net.Parameters.Gradients;
            for (int i = 0; i < v.Length; i++) v[i] -= 0.1f * g[i];
        }
        Assert.True(last < 0.6f * first, $"loss {first} -> {last}");
    }
}

/// <summary>Long sequences make attention's [H, T, T] probabilities dominate: 16 × 4096² floats per sample.</summary>
[Network, Input(Dim.Sequence, 64, MaxSequence = 4096), MSELoss]
public partial class LongAttention
{
    [SelfAttention(64, heads: 16)] public partial SelfAttention Attention { get; }
    Tensor Forward(Tensor x) => x.Apply(Attention);
}

public class WorkspaceLimitTests
{
    [Fact]
    public void ABatchThatCannotFitOneArena_IsRefusedWithTheSizeAndTheLargestBatch()
    {
        using var net = new LongAttention(seed: 1);
        int max = LongAttention.MaxWorkspaceBatch;
        Assert.InRange(max, 1, 7);
        int batch = max + 1;
        var ex = Assert.Throws<InvalidOperationException>(() => net.TrainStep(new float[batch * 64], new float[batch * 64], default, batch, 1));
        Assert.Contains($"a batch of {batch} samples needs", ex.Message);
        Assert.Contains($"at most {max} samples", ex.Message);
    }
}
