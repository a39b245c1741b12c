namespace Compiled.Nets.Runtime.Tests.Eager;

/// <summary>
/// The eager tape's Backward through a whole composite (conv → pool → tanh → flatten → linear → cross-entropy)
/// against central finite differences of the eager forward. The eager path is float-only, so the step is large and
/// the ops smooth (tanh, average pooling) to keep the numeric derivative clean.
/// </summary>
public class EagerGradCheckTests
{
    [Fact]
    public void CompositeBackward_MatchesFiniteDifferences_ForInputAndWeights()
    {
        var b = new ParameterStoreBuilder();
        b.Add("conv.weight", [3, 2, 3, 3], ParameterRole.Weight, ParameterInit.Uniform(0.4f));
        b.Add("conv.bias", [3], ParameterRole.Bias, ParameterInit.Uniform(0.4f));
        b.Add("fc.weight", [4, 3 * 3 * 3], ParameterRole.Weight, ParameterInit.Uniform(0.3f));
        b.Add("fc.bias", [4], ParameterRole.Bias, ParameterInit.Uniform(0.3f));
        using var store = b.Build();
        store.Initialize(11);
        var conv = new Conv2d(store, "conv", 2, 3, 3, 1, 1, 1, true);
        var fc = new Linear(store, "fc", 27, 4, true);
        var r = new Rng(3);
        var x = Enumerable.Range(0, 2 * 2 * 7 * 6).Select(_ => r.NextFloat() - 0.5f).ToArray();
        int[] labels = [1, 3];

        Tensor Build(float[] data) => new Tensor(data, 2, 2, 7, 6).Apply(conv).AvgPool2d(2).Tanh().Flatten().Apply(fc).CrossEntropy(labels);
        double Loss() => Build((float[])x.Clone()).Data[0];

        store.ZeroGradients();
        var input = new Tensor((float[])x.Clone(), 2, 2, 7, 6);
        input.Apply(conv).AvgPool2d(2).Tanh().Flatten().Apply(fc).CrossEntropy(labels).Backward();

        void Check(Span<float> values, float[] analytic, string what)
        {
            Assert.Contains(analytic, v => v != 0);
            for (int i = 0; i < values.Length; i += Math.Max(1, values.Length / 17))
            {
                const float h = 1e-2f;
                float keep = values[i];
                values[i] = keep + h; double up = Loss();
                values[i] = keep - h; double down = Loss();
                values[i] = keep;
                double numeric = (up - down) / (2 * h);
                Assert.True(Math.Abs(numeric - analytic[i]) < 2e-3 + 2e-2 * Math.Abs(numeric), $"{what}[{i}]: tape {analytic[i]} vs numeric {numeric}");
            }
        }

        Check(x, input.Grad!, "dx");
        foreach (var p in store.Parameters) Check(store.Value(p), store.Gradient(p).ToArray(), p.Name);
    }
}
