using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one Adam/AdamW update (the CPU optimizer's arithmetic, bias corrections folded in); <see cref="Decay"/> and
/// <see cref="CoupledWd"/> apply to the runs that decay.</summary>
internal struct AdamArgs
{
    public float Beta1, Beta2, Eps, StepSize, Bc2Sqrt, Decay, CoupledWd;
}

/// <summary>Scalars of one SGD update (torch.optim.SGD's): <see cref="First"/> starts the momentum buffer from the gradient.</summary>
internal struct SgdArgs
{
    public float LearningRate, Momentum, Undamped, WeightDecay;
    public int Nesterov, First;
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, AdamArgs>? _adam;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, SgdArgs>? _sgd;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>? _sumOfSquares;
    private Action<KernelConfig, ArrayView<float>, int>? _addPartials;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int, float>? _scaleRuns;
    private Action<Index1D, ArrayView<float>, float>? _scale;

    /// <summary>Groups that each add a part of a sum of squares, and so the partial sums after <c>sum[0]</c>.</summary>
    internal const int SquarePartials = 64;

    /// <summary>sum[0] += Σ x[j]² over the elements of <paramref name="runs"/> (a gradient norm) in a fixed order: up to
    /// <see cref="SquarePartials"/> groups each sum every so many elements of the walk into sum[1 + g], then one group adds
    /// those in turn. <paramref name="sum"/> holds 1 + <see cref="SquarePartials"/> floats. Two launches.</summary>
    internal void AddSumOfSquares(ArrayView<float> sum, ArrayView<float> x, ParameterRuns runs)
    {
        int n = runs.Elements;
        if (n == 0) return;
        Need(sum, 1 + SquarePartials, nameof(sum));
        _sumOfSquares ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(SumOfSquaresKernel);
        _addPartials ??= Accelerator.LoadStreamKernel<ArrayView<float>, int>(AddPartialsKernel);
        int threads = RowThreads(n, 1024), groups = Math.Min(SquarePartials, Groups(n, 4 * threads));
        Launched(); _sumOfSquares(new KernelConfig(groups, threads), sum.SubView(1, groups), x, runs.View, runs.Count, n);
        Launched(); _addPartials(new KernelConfig(1, RowThreads(groups)), sum, groups);
    }

    /// <summary>Group g: partial[g] = Σ x[j]² over the walk's elements i = g·T + t, stepping by all the groups' threads;
    /// each thread finds its first run by search and the later ones by stepping on.</summary>
    private static void SumOfSquaresKernel(ArrayView<float> partial, ArrayView<float> x, ArrayView<int> runs, int count, int n)
    {
        float s = 0f;
        int i = Grid.IdxX * Group.DimX + Group.IdxX, r = i < n ? ParameterRuns.RunOf(runs, count, i) : 0;
        for (; i < n; i += Grid.DimX * Group.DimX)
        {
            while (r + 1 < count && runs[ParameterRuns.Fields * (r + 1)] <= i) r++;
            float v = x[ParameterRuns.Place(runs, r, i)];
            s += v * v;
        }
        s = GroupSum(s);
        if (Group.IdxX == 0) partial[Grid.IdxX] = s;
    }

    /// <summary>sum[0] += sum[1] + … + sum[count] (one group).</summary>
    private static void AddPartialsKernel(ArrayView<float> sum, int count)
    {
        float s = 0f;
        for (int g = Group.IdxX; g < count; g += Group.DimX) s += sum[1 + g];
        s = GroupSum(s);
        if (Group.IdxX == 0) sum[0] += s;
    }

    /// <summary>x *= s over <paramref name="n"/> elements (the mean over accumulated micro-batches).</summary>
    internal void Scale(ArrayView<float> x, long n, float s)
    {
        if (n == 0) return;
        _scale ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ScaleKernel);
        Launched();
        _scale(checked((int)n), x, s);
    }

    private static void ScaleKernel(Index1D i, ArrayView<float> x, float s) => x[i] *= s;

    /// <summary>x *= s over the elements of <paramref name="runs"/> (clipping the trainable gradients).</summary>
    internal void Scale(ArrayView<float> x, ParameterRuns runs, float s)
    {
        if (runs.Elements == 0) return;
        _scaleRuns ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, float>(ScaleRunsKernel);
        Launched();
        _scaleRuns(runs.Elements, x, runs.View, runs.Count, s);
    }

    private static void ScaleRunsKernel(Index1D i, ArrayView<float> x, ArrayView<int> runs, int count, float s) =>
        x[ParameterRuns.Place(runs, ParameterRuns.RunOf(runs, count, i), i)] *= s;

    /// <summary>One Adam/AdamW step over every element of <paramref name="runs"/>: values <paramref name="w"/>, gradients
    /// <paramref name="g"/>, moments <paramref name="m"/>, <paramref name="v"/>, all laid out as the flat parameters (the same
    /// arithmetic as the CPU's Adam; a run that does not decay takes no weight decay). One launch.</summary>
    internal void Adam(ArrayView<float> w, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ParameterRuns runs, AdamArgs a)
    {
        if (runs.Elements == 0) return;
        _adam ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, AdamArgs>(AdamKernel);
        Launched();
        _adam(runs.Elements, w, g, m, v, runs.View, runs.Count, a);
    }

    private static void AdamKernel(Index1D i, ArrayView<float> w, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<int> runs, int count, AdamArgs a)
    {
        int r = ParameterRuns.RunOf(runs, count, i), j = ParameterRuns.Place(runs, r, i);
        bool decays = ParameterRuns.Decays(runs, r);
        float gi = g[j] + (decays ? a.CoupledWd : 0f) * w[j];
        float wi = w[j] * (decays ? a.Decay : 1f);
        float mi = a.Beta1 * m[j] + (1f - a.Beta1) * gi;
        float vi = a.Beta2 * v[j] + (1f - a.Beta2) * gi * gi;
        m[j] = mi; v[j] = vi;
        w[j] = wi - a.StepSize * mi / (ILGPU.Algorithms.XMath.Sqrt(vi) / a.Bc2Sqrt + a.Eps);
    }

    /// <summary>One SGD step (momentum, dampening, Nesterov, weight decay) as torch.optim.SGD over every element of
    /// <paramref name="runs"/>, the momentum buffer <paramref name="buf"/> laid out as the flat parameters; a run that does
    /// not decay takes no weight decay. One launch.</summary>
    internal void Sgd(ArrayView<float> w, ArrayView<float> g, ArrayView<float> buf, ParameterRuns runs, SgdArgs a)
    {
        if (runs.Elements == 0) return;
        _sgd ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, SgdArgs>(SgdKernel);
        Launched();
        _sgd(runs.Elements, w, g, buf, runs.View, runs.Count, a);
    }

    private static void SgdKernel(Index1D i, ArrayView<float> w, ArrayView<float> g, ArrayView<float> buf, ArrayView<int> runs, int count, SgdArgs a)
    {
        int r = ParameterRuns.RunOf(runs, count, i), j = ParameterRuns.Place(runs, r, i);
        float d = g[j] + (ParameterRuns.Decays(runs, r) ? a.WeightDecay : 0f) * w[j];
        if (a.Momentum != 0f)
        {
            float b = a.First != 0 ? d : a.Momentum * buf[j] + a.Undamped * d;
            buf[j] = b;
            d = a.Nesterov != 0 ? d + a.Momentum * b : b;
        }
        w[j] -= a.LearningRate * d;
    }
}
