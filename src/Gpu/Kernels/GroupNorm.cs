using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>nn.GroupNorm's sizes as kernel scalars: [batch, channels, positions] in groups of channels.</summary>
internal struct GroupNormArgs
{
    public int Batch, Channels, Positions, Groups;
    public float Eps;

    public readonly int PerGroupChannels => Channels / Groups;
    public readonly int PerGroup => Channels / Groups * Positions;
}

// GroupNorm on the device, as GroupNormKernels on the CPU: one group of threads per (sample, group) for its statistics
// and its gradient sums, one per channel for the parameter gradients, one thread per element for the values; no atomics.
public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupStats;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupNormalize;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupSums;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs, int>? _groupParams;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupDx;

    /// <summary>y = (x − mean)·rstd·w[c] + b[c] per (sample, group) of x [batch, channels, positions]; mean and rstd
    /// ([batch, groups]) are written for backward. Two launches.</summary>
    public void GroupNormForward(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias,
        int batch, int channels, int positions, int groups, float eps)
    {
        var a = new GroupNormArgs { Batch = batch, Channels = channels, Positions = positions, Groups = groups, Eps = eps };
        long n = (long)batch * channels * positions;
        Need(y, n, nameof(y)); Need(x, n, nameof(x)); Need(mean, (long)batch * groups, nameof(mean)); Need(rstd, (long)batch * groups, nameof(rstd));
        if (n == 0) return;
        _groupStats ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupStatsKernel);
        _groupNormalize ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupNormalizeKernel);
        Launched(); _groupStats(RowConfig(batch * groups, a.PerGroup), mean, rstd, x, a);
        Launched(); _groupNormalize(checked((int)n), y, x, mean, rstd, weight, bias, a);
    }

    /// <summary>dx += the input gradient (empty: not needed), dw[c] += Σ dy·x̂, db[c] += Σ dy; <paramref name="sums"/>
    /// holds 2 × batch × groups floats of the groups' gradient sums. Two or three launches.</summary>
    public void GroupNormBackward(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> weight, ArrayView<float> sums, int batch, int channels, int positions, int groups)
    {
        var a = new GroupNormArgs { Batch = batch, Channels = channels, Positions = positions, Groups = groups };
        long n = (long)batch * channels * positions;
        Need(dy, n, nameof(dy)); Need(sums, 2L * batch * groups, nameof(sums));
        if (n == 0) return;
        _groupParams ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs, int>(GroupParamsKernel);
        Launched(); _groupParams(SumConfig(channels, (long)batch * positions), dw.Length > 0 ? dw : sums, db.Length > 0 ? db : sums, dy, x, mean, rstd, a, (dw.Length > 0 ? 1 : 0) | (db.Length > 0 ? 2 : 0));
        if (dx.Length == 0) return;
        Need(dx, n, nameof(dx));
        _groupSums ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupSumsKernel);
        _groupDx ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupDxKernel);
        Launched(); _groupSums(RowConfig(batch * groups, a.PerGroup), sums, dy, x, mean, rstd, weight, a);
        Launched(); _groupDx(checked((int)n), dx, dy, x, mean, rstd, weight, sums, a);
    }

    /// <summary>(Sample, group) Grid.IdxX: its threads take every Group.DimX-th value.</summary>
    private static void GroupStatsKernel(ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, GroupNormArgs a)
    {
        int bg = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long start = (long)bg * a.PerGroup;
        float sum = 0f;
        for (int i = first; i < a.PerGroup; i += step) sum += x[start + i];
        float mu = GroupSum(sum) / a.PerGroup, squares = 0f;
        for (int i = first; i < a.PerGroup; i += step) { float d = x[start + i] - mu; squares += d * d; }
        squares = GroupSum(squares);
        if (first != 0) return;
        mean[bg] = mu;
        rstd[bg] = XMath.Rsqrt(squares / a.PerGroup + a.Eps);
    }

    private static void GroupNormalizeKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> weight, ArrayView<float> bias, GroupNormArgs a)
    {
        int i = index;
        int c = i / a.Positions % a.Channels, bg = i / a.PerGroup;
        y[i] = (x[i] - mean[bg]) * rstd[bg] * weight[c] + bias[c];
    }

    /// <summary>Per channel: dw += Σ dy·x̂, db += Σ dy over the batch and positions (flags: 1 dw, 2 db).</summary>
    private static void GroupParamsKernel(ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, GroupNormArgs a, int flags)
    {
        int c = Grid.IdxX, g = c / a.PerGroupChannels;
        float sumDy = 0f, sumDyX = 0f;
        for (int q = Group.IdxX; q < a.Batch * a.Positions; q += Group.DimX)
        {
            int b = q / a.Positions, bg = b * a.Groups + g;
            long i = ((long)b * a.Channels + c) * a.Positions + q % a.Positions;
            float d = dy[i];
            sumDy += d;
            sumDyX += d * (x[i] - mean[bg]) * rstd[bg];
        }
        sumDy = GroupSum(sumDy);
        sumDyX = GroupSum(sumDyX);
        if (Group.IdxX != 0) return;
        if ((flags & 1) != 0) dw[c] += sumDyX;
        if ((flags & 2) != 0) db[c] += sumDy;
    }

    /// <summary>Per (sample, group): the means of dx̂ = dy·w and of dx̂·x̂, into sums[2·bg] and sums[2·bg + 1].</summary>
    private static void GroupSumsKernel(ArrayView<float> sums, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> weight, GroupNormArgs a)
    {
        int bg = Grid.IdxX, g = bg % a.Groups;
        long start = (long)bg * a.PerGroup;
        float sumG = 0f, sumGX = 0f;
        for (int i = Group.IdxX; i < a.PerGroup; i += Group.DimX)
        {
            float gw = dy[start + i] * weight[g * a.PerGroupChannels + i / a.Positions];
            sumG += gw;
            sumGX += gw * (x[start + i] - mean[bg]) * rstd[bg];
        }
        sumG = GroupSum(sumG);
        sumGX = GroupSum(sumGX);
        if (Group.IdxX != 0) return;
        sums[2 * bg] = sumG / a.PerGroup;
        sums[2 * bg + 1] = sumGX / a.PerGroup;
    }

    private static void GroupDxKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> weight, ArrayView<float> sums, GroupNormArgs a)
    {
        int i = index;
        int c = i / a.Positions % a.Channels, bg = i / a.PerGroup;
        float r = rstd[bg];
        dx[i] += r * (dy[i] * weight[c] - sums[2 * bg] - (x[i] - mean[bg]) * r * sums[2 * bg + 1]);
    }
}
