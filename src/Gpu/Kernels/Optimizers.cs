using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one Adam/AdamW update (the CPU optimizer's arithmetic, bias corrections folded in).</summary>
internal struct AdamArgs
{
    public float Beta1, Beta2, Eps, StepSize, Bc2Sqrt, Decay, CoupledWd;
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs>? _adam;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, float, int>? _sgd;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>? _sumOfSquares;
    private Action<KernelConfig, ArrayView<float>, int>? _addPartials;
    private Action<Index1D, ArrayView<float>, float>? _scale;

    /// <summary>Groups that each add a part of a sum of squares, and so the partial sums after <c>sum[0]</c>.</summary>
    internal const int SquarePartials = 64;

    /// <summary>sum[0] += Σ x[i]² over <paramref name="n"/> elements (a gradient norm) in a fixed order: up to
    /// <see cref="SquarePartials"/> groups each sum every so many elements into sum[1 + g], then one group adds those
    /// in turn. <paramref name="sum"/> holds 1 + <see cref="SquarePartials"/> floats. Two launches.</summary>
    internal void AddSumOfSquares(ArrayView<float> sum, ArrayView<float> x, long n)
    {
        if (n == 0) return;
        Need(sum, 1 + SquarePartials, nameof(sum)); Need(x, n, nameof(x));
        _sumOfSquares ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(SumOfSquaresKernel);
        _addPartials ??= Accelerator.LoadStreamKernel<ArrayView<float>, int>(AddPartialsKernel);
        int threads = RowThreads(n, 1024), groups = (int)Math.Min(SquarePartials, Groups(n, 4 * threads));
        Launched(); _sumOfSquares(new KernelConfig(groups, threads), sum.SubView(1, groups), x, checked((int)n));
        Launched(); _addPartials(new KernelConfig(1, RowThreads(groups)), sum, groups);
    }

    /// <summary>Group g: partial[g] = Σ x[i]² over i = g·T + t, stepping by all the groups' threads.</summary>
    private static void SumOfSquaresKernel(ArrayView<float> partial, ArrayView<float> x, int n)
    {
        float s = 0f;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += Grid.DimX * Group.DimX) s += x[i] * x[i];
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

    /// <summary>x *= s over <paramref name="n"/> elements (clipping a gradient).</summary>
    internal void Scale(ArrayView<float> x, long n, float s)
    {
        if (n == 0) return;
        _scale ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ScaleKernel);
        Launched();
        _scale(checked((int)n), x, s);
    }

    private static void ScaleKernel(Index1D i, ArrayView<float> x, float s) => x[i] *= s;

    /// <summary>One Adam/AdamW step over a parameter's values <paramref name="w"/> with gradient <paramref name="g"/>
    /// and moments <paramref name="m"/>, <paramref name="v"/> (the same arithmetic as the CPU's Adam).</summary>
    internal void Adam(ArrayView<float> w, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, long n, AdamArgs a)
    {
        if (n == 0) return;
        _adam ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs>(AdamKernel);
        Launched();
        _adam(checked((int)n), w, g, m, v, a);
    }

    private static void AdamKernel(Index1D i, ArrayView<float> w, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamArgs a)
    {
        float gi = g[i] + a.CoupledWd * w[i];
        float wi = w[i] * a.Decay;
        float mi = a.Beta1 * m[i] + (1f - a.Beta1) * gi;
        float vi = a.Beta2 * v[i] + (1f - a.Beta2) * gi * gi;
        m[i] = mi; v[i] = vi;
        w[i] = wi - a.StepSize * mi / (ILGPU.Algorithms.XMath.Sqrt(vi) / a.Bc2Sqrt + a.Eps);
    }

    /// <summary>One SGD step (momentum, dampening, Nesterov, weight decay) as torch.optim.SGD; <paramref name="first"/>
    /// starts the momentum buffer from the gradient.</summary>
    internal void Sgd(ArrayView<float> w, ArrayView<float> g, ArrayView<float> buf, long n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool first)
    {
        if (n == 0) return;
        _sgd ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, float, int>(SgdKernel);
        Launched();
        _sgd(checked((int)n), w, g, buf, lr, momentum, 1f - dampening, weightDecay, (nesterov ? 1 : 0) | (first ? 2 : 0) | (momentum != 0 ? 4 : 0));
    }

    private static void SgdKernel(Index1D i, ArrayView<float> w, ArrayView<float> g, ArrayView<float> buf, float lr, float momentum, float undamped, float wd, int flags)
    {
        float d = g[i] + wd * w[i];
        if ((flags & 4) != 0)
        {
            float b = (flags & 2) != 0 ? d : momentum * buf[i] + undamped * d;
            buf[i] = b;
            d = (flags & 1) != 0 ? d + momentum * b : b;
        }
        w[i] -= lr * d;
    }
}
