using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>A batch norm's sizes and constants as kernel scalars.</summary>
internal struct NormArgs
{
    public int Batch, Channels, Spatial;
    public float Eps, Momentum;
}

/// <summary>A layer norm's branch operand (a Linear's raw output): its bias, and the dropout the fused chain would draw.</summary>
internal struct BranchArgs
{
    public int Features, Biased;
    public float Eps, P, Keep;
    public ulong Key;
    public int Stream;

    /// <summary>Element i's dropout factor: 0 where the chain's mask drops it, else 1/(1 − p); 1 without dropout.</summary>
    public readonly float Factor(long i) => P > 0f ? (Philox.Uniform(Key, i, Stream) < P ? 0f : Keep) : 1f;
}

public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormStats;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormTrain;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormEval;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormGradSums;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, NormArgs>? _batchNormBackward;

    /// <summary>Floats of device state one batch norm over <paramref name="channels"/> keeps: the batch's mean and
    /// inverse deviation (saved for backward), then two per-channel sums.</summary>
    public static long BatchNormState(int channels) => 4L * channels;

    /// <summary>
    /// Training-mode batch norm over x[B, C, spatial] as nn.BatchNorm1d/2d: batch mean and biased variance per channel
    /// (one group per channel, two passes over its values: no cancellation; a fixed order), y = (x − mean)·γ/√(var +
    /// eps) + β; the running mean and unbiased variance move by <paramref name="momentum"/> and num_batches_tracked grows
    /// by one. Two launches.
    /// </summary>
    public void BatchNormForwardTraining(ArrayView<float> y, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> runningMean,
        ArrayView<float> runningVar, ArrayView<float> batchesTracked, ArrayView<float> state, int batch, int channels, int spatial, float eps, float momentum)
    {
        var a = new NormArgs { Batch = batch, Channels = channels, Spatial = spatial, Eps = eps, Momentum = momentum };
        long n = (long)batch * channels * spatial;
        Need(x, n, nameof(x)); Need(y, n, nameof(y)); Need(state, BatchNormState(channels), nameof(state));
        var sums = state.SubView(2L * channels, 2L * channels);
        _batchNormStats ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormStatsKernel);
        _batchNormTrain ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormTrainKernel);
        Launched(); _batchNormStats(SumConfig(channels, (long)batch * spatial), sums, x, a);
        Launched(); _batchNormTrain(checked((int)n), y, x, gamma, beta, runningMean, runningVar, batchesTracked, state, a);
    }

    /// <summary>Evaluation-mode batch norm with the running statistics. One launch.</summary>
    public void BatchNormForwardInference(ArrayView<float> y, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> runningMean,
        ArrayView<float> runningVar, int batch, int channels, int spatial, float eps)
    {
        var a = new NormArgs { Batch = batch, Channels = channels, Spatial = spatial, Eps = eps };
        long n = (long)batch * channels * spatial;
        Need(x, n, nameof(x)); Need(y, n, nameof(y));
        _batchNormEval ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormEvalKernel);
        Launched(); _batchNormEval(checked((int)n), y, x, gamma, beta, runningMean, runningVar, a);
    }

    /// <summary>
    /// Training-mode batch norm's gradients from the mean and inverse deviation <paramref name="state"/> saved by the
    /// forward: dγ += Σ dy·x̂, dβ += Σ dy, dx += γ·inv/m·(m·dy − Σdy − x̂·Σ dy·x̂) (dx empty: not needed; dγ or dβ empty: frozen). Two launches.
    /// </summary>
    public void BatchNormBackward(ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma,
        ArrayView<float> state, int batch, int channels, int spatial)
    {
        var a = new NormArgs { Batch = batch, Channels = channels, Spatial = spatial };
        long n = (long)batch * channels * spatial;
        Need(dy, n, nameof(dy)); Need(x, n, nameof(x)); Need(state, BatchNormState(channels), nameof(state));
        _batchNormGradSums ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormGradSumsKernel);
        _batchNormBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, NormArgs>(BatchNormBackwardKernel);
        Launched(); _batchNormGradSums(SumConfig(channels, (long)batch * spatial), state, dy, x, a);
        // A view that is not wanted is never passed as an empty one: a flag says so and the kernel leaves it alone.
        int wanted = (dx.Length > 0 ? 1 : 0) | (dgamma.Length > 0 ? 2 : 0) | (dbeta.Length > 0 ? 4 : 0);
        if (dgamma.Length > 0) Need(dgamma, channels, nameof(dgamma));
        if (dbeta.Length > 0) Need(dbeta, channels, nameof(dbeta));
        Launched(); _batchNormBackward(checked((int)n), dx.Length > 0 ? dx : dy, dgamma.Length > 0 ? dgamma : dy, dbeta.Length > 0 ? dbeta : dy, dy, x, gamma, state, wanted, a);
    }

    /// <summary>Channel Grid.IdxX: sums[c] = Σ x, then sums[C + c] = Σ (x − mean)², each thread taking every
    /// Group.DimX-th (sample, position) pair.</summary>
    private static void BatchNormStatsKernel(ArrayView<float> sums, ArrayView<float> x, NormArgs a)
    {
        int c = Grid.IdxX, count = a.Batch * a.Spatial;
        float s = 0f;
        for (int q = Group.IdxX; q < count; q += Group.DimX) s += x[ChannelAt(q, c, a)];
        float total = GroupSum(s), mean = total / count, sq = 0f;
        for (int q = Group.IdxX; q < count; q += Group.DimX) { float d = x[ChannelAt(q, c, a)] - mean; sq += d * d; }
        sq = GroupSum(sq);
        if (Group.IdxX != 0) return;
        sums[c] = total;
        sums[a.Channels + c] = sq;
    }

    /// <summary>Where the <paramref name="q"/>-th (sample, position) pair of channel <paramref name="c"/> is.</summary>
    private static long ChannelAt(int q, int c, NormArgs a) => ((long)(q / a.Spatial) * a.Channels + c) * a.Spatial + q % a.Spatial;

    /// <summary>Normalises one element; the first element of each channel also saves its mean and inverse deviation
    /// and moves the running statistics (and the first of all counts the batch).</summary>
    private static void BatchNormTrainKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> batchesTracked, ArrayView<float> state, NormArgs a)
    {
        int c = (int)(index / a.Spatial % a.Channels);
        float m = (float)a.Batch * a.Spatial;
        var sums = state.SubView(2L * a.Channels, 2L * a.Channels);
        float mean = sums[c] / m, sq = sums[a.Channels + c];
        float inv = 1f / XMath.Sqrt(sq / m + a.Eps);
        y[index] = (x[index] - mean) * inv * gamma[c] + beta[c];
        if (index < a.Channels * a.Spatial && index % a.Spatial == 0)
        {
            state[c] = mean;
            state[a.Channels + c] = inv;
            float unbiased = m > 1f ? sq / (m - 1f) : sq / m;
            runningMean[c] = (1f - a.Momentum) * runningMean[c] + a.Momentum * mean;
            runningVar[c] = (1f - a.Momentum) * runningVar[c] + a.Momentum * unbiased;
            if (c == 0) batchesTracked[0] += 1f;
        }
    }

    private static void BatchNormEvalKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, NormArgs a)
    {
        int c = (int)(index / a.Spatial % a.Channels);
        float scale = gamma[c] / XMath.Sqrt(runningVar[c] + a.Eps);
        y[index] = x[index] * scale + (beta[c] - runningMean[c] * scale);
    }

    /// <summary>Channel Grid.IdxX: state[2C + c] = Σ dy, state[3C + c] = Σ dy·x̂.</summary>
    private static void BatchNormGradSumsKernel(ArrayView<float> state, ArrayView<float> dy, ArrayView<float> x, NormArgs a)
    {
        int c = Grid.IdxX, count = a.Batch * a.Spatial;
        float mean = state[c], inv = state[a.Channels + c];
        float sd = 0f, sdx = 0f;
        for (int q = Group.IdxX; q < count; q += Group.DimX)
        {
            long i = ChannelAt(q, c, a);
            float d = dy[i];
            sd += d; sdx += d * (x[i] - mean) * inv;
        }
        sd = GroupSum(sd);
        sdx = GroupSum(sdx);
        if (Group.IdxX != 0) return;
        state[2 * a.Channels + c] = sd;
        state[3 * a.Channels + c] = sdx;
    }

    /// <summary>dx per element (<paramref name="wanted"/> bit 1); the first element of each channel adds dγ (bit 2) and
    /// dβ (bit 4).</summary>
    private static void BatchNormBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy,
        ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> state, int wanted, NormArgs a)
    {
        int c = (int)(index / a.Spatial % a.Channels);
        float mean = state[c], inv = state[a.Channels + c], sd = state[2 * a.Channels + c], sdx = state[3 * a.Channels + c];
        if ((wanted & 1) != 0)
        {
            float m = (float)a.Batch * a.Spatial;
            float xhat = (x[index] - mean) * inv;
            dx[index] += gamma[c] * inv / m * (m * dy[index] - sd - xhat * sdx);
        }
        if (index < a.Channels * a.Spatial && index % a.Spatial == 0)
        {
            if ((wanted & 2) != 0) dgamma[c] += sdx;
            if ((wanted & 4) != 0) dbeta[c] += sd;
        }
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? _layerNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _layerNormParams;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BranchArgs>? _layerNormOfBranch;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BranchArgs>? _layerNormDx;

    /// <summary>nn.LayerNorm over the last dimension: y = (x − mean)·rstd·γ + β per row (biased variance, two passes);
    /// saves each row's mean and rstd for backward. One group per row.</summary>
    public void LayerNormForward(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        int rows, int features, float eps) => LayerNorm(y, mean, rstd, x, x, x, summed: false, gamma, beta, rows, features, eps);

    /// <summary>
    /// <see cref="LayerNormForward"/> of the residual sum a + b, formed as the norm reads it and kept in
    /// <paramref name="sum"/> for backward: one launch where the add and the norm were two, and one read of the sum
    /// fewer.
    /// </summary>
    public void LayerNormOfSumForward(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> sum, ArrayView<float> a, ArrayView<float> b,
        ArrayView<float> gamma, ArrayView<float> beta, int rows, int features, float eps)
    {
        long n = (long)rows * features;
        Need(a, n, nameof(a)); Need(b, n, nameof(b));
        LayerNorm(y, mean, rstd, sum, a, b, summed: true, gamma, beta, rows, features, eps);
    }

    /// <summary>
    /// <see cref="LayerNormOfSumForward"/> where one operand is a Linear's raw output <paramref name="raw"/> that its chain
    /// would bias (<paramref name="bias"/>; empty: none) and drop out (probability <paramref name="p"/>; 0: none, as in
    /// evaluation) before the add — BERT's dense → dropout → + x → LayerNorm: y = LayerNorm(drop(raw + bias) + residual),
    /// the sum kept in <paramref name="sum"/>. The dropout draws the chain's mask (Philox under <paramref name="key"/>, the
    /// dropout's op id as <paramref name="stream"/>, the element's index as counter), so backward draws it again and
    /// nothing but the sum is stored. One launch where the chain and the norm were two.
    /// </summary>
    public void LayerNormOfBranchForward(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> sum, ArrayView<float> raw, ArrayView<float> bias,
        ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta, int rows, int features, float eps, float p, ulong key, int stream)
    {
        long n = (long)rows * features;
        var a = Branch(bias, features, eps, p, key, stream);
        Need(y, n, nameof(y)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd)); Need(sum, n, nameof(sum)); Need(raw, n, nameof(raw)); Need(residual, n, nameof(residual));
        Need(gamma, features, nameof(gamma)); Need(beta, features, nameof(beta));
        if (rows == 0) return;
        _layerNormOfBranch ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BranchArgs>(LayerNormOfBranchKernel);
        // A view that is not wanted is never passed as an empty one: a flag says so and the kernel leaves it alone.
        Launched(); _layerNormOfBranch(RowConfig(rows, features), y, mean, rstd, sum, raw, bias.Length > 0 ? bias : gamma, residual, gamma, beta, a);
    }

    /// <summary>
    /// The gradients of <see cref="LayerNormOfBranchForward"/>: the norm's input gradient g is added to the residual's
    /// (<paramref name="dResidual"/>) and, times the dropout's factor drawn again, to the Linear's raw output's
    /// (<paramref name="dRaw"/>), in one pass; then dγ, dβ and the bias's gradient (Σ over rows of dRaw, which this call
    /// alone writes) as one column sum. Any gradient may be empty: not needed, or frozen. Up to two launches where the
    /// chain's backward and the norm's were three.
    /// </summary>
    public void LayerNormOfBranchBackward(ArrayView<float> dRaw, ArrayView<float> dResidual, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dBias,
        ArrayView<float> dy, ArrayView<float> sum, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int features, float p, ulong key, int stream)
    {
        long n = (long)rows * features;
        var a = Branch(dBias, features, 0f, p, key, stream);
        Need(dy, n, nameof(dy)); Need(sum, n, nameof(sum)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd)); Need(gamma, features, nameof(gamma));
        if (dBias.Length > 0 && dRaw.Length == 0) throw new ArgumentException("LayerNormOfBranchBackward: the bias's gradient is summed from the raw output's, which is empty.", nameof(dRaw));
        if (rows == 0) return;
        int rowsWanted = (dRaw.Length > 0 ? 1 : 0) | (dResidual.Length > 0 ? 2 : 0);
        if (rowsWanted != 0)
        {
            if (dRaw.Length > 0) Need(dRaw, n, nameof(dRaw));
            if (dResidual.Length > 0) Need(dResidual, n, nameof(dResidual));
            _layerNormDx ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BranchArgs>(LayerNormDxKernel);
            Launched(); _layerNormDx(RowConfig(rows, features), dRaw.Length > 0 ? dRaw : dy, dResidual.Length > 0 ? dResidual : dy, dy, sum, mean, rstd, gamma, rowsWanted, a);
        }
        LayerNormParameters(dgamma, dbeta, dBias, dRaw, dy, sum, mean, rstd, rows, features);
    }

    private static BranchArgs Branch(ArrayView<float> bias, int features, float eps, float p, ulong key, int stream)
    {
        if (features <= 0) throw new ArgumentException($"LayerNorm: {features} features.", nameof(features));
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "A dropout probability is in [0, 1).");
        if (bias.Length > 0) Need(bias, features, nameof(bias));
        return new BranchArgs { Features = features, Biased = bias.Length > 0 ? 1 : 0, Eps = eps, P = p, Keep = (float)(1.0 / (1.0 - p)), Key = key, Stream = stream };
    }

    private void LayerNorm(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> a, ArrayView<float> b, bool summed,
        ArrayView<float> gamma, ArrayView<float> beta, int rows, int features, float eps)
    {
        long n = (long)rows * features;
        Need(x, n, summed ? "sum" : nameof(x)); Need(y, n, nameof(y)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd)); Need(gamma, features, nameof(gamma)); Need(beta, features, nameof(beta));
        if (rows == 0) return;
        _layerNorm ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(LayerNormKernel);
        Launched(); _layerNorm(RowConfig(rows, features), y, mean, rstd, x, a, b, gamma, beta, summed ? 1 : 0, features, eps);
    }

    /// <summary>LayerNorm's gradients: dx += rstd·(g·γ − (Σ g·γ + x̂·Σ g·γ·x̂)/F) per row (dx empty: not needed), and
    /// dγ += Σ g·x̂, dβ += Σ g per feature, summed as a column sum is (a fixed order; either empty: frozen). Up to two launches.</summary>
    public void LayerNormBackward(ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int features) =>
        LayerNormGradients(dx, default, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, features);

    /// <summary>The gradients of <see cref="LayerNormOfSumForward"/>: the norm's input gradient is added to both operands'
    /// (<paramref name="da"/>, <paramref name="db"/>; either may be empty: not needed, and both may be one buffer, for
    /// x + x) as the add's backward would, in the norm's own pass; dγ or dβ empty: frozen. Up to two launches.</summary>
    public void LayerNormOfSumBackward(ArrayView<float> da, ArrayView<float> db, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> sum,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int features) =>
        LayerNormGradients(da.Length > 0 ? da : db, da.Length > 0 ? db : default, dgamma, dbeta, dy, sum, mean, rstd, gamma, rows, features);

    private void LayerNormGradients(ArrayView<float> dx, ArrayView<float> dx2, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int features)
    {
        long n = (long)rows * features;
        Need(dy, n, nameof(dy)); Need(x, n, nameof(x)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd));
        if (rows == 0) return;
        if (dx.Length > 0)
        {
            Need(dx, n, nameof(dx));
            if (dx2.Length > 0) Need(dx2, n, nameof(dx2));
            _layerNormDx ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BranchArgs>(LayerNormDxKernel);
            // A view that is not wanted is never passed as an empty one: a flag says so and the kernel leaves it alone.
            // No dropout: the factor is 1.
            Launched(); _layerNormDx(RowConfig(rows, features), dx, dx2.Length > 0 ? dx2 : dx, dy, x, mean, rstd, gamma, 1 | (dx2.Length > 0 ? 2 : 0), new BranchArgs { Features = features });
        }
        LayerNormParameters(dgamma, dbeta, default, default, dy, x, mean, rstd, rows, features);
    }

    /// <summary>dγ, dβ and a branch's bias gradient (column sums of <paramref name="dRaw"/>) in one column sum; a frozen
    /// one (empty) is left alone, and with all three frozen nothing is launched.</summary>
    private void LayerNormParameters(ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dBias, ArrayView<float> dRaw, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int features)
    {
        int wanted = (dgamma.Length > 0 ? 1 : 0) | (dbeta.Length > 0 ? 2 : 0) | (dBias.Length > 0 ? 4 : 0);
        if (wanted == 0) return;
        if (dgamma.Length > 0) Need(dgamma, features, nameof(dgamma));
        if (dbeta.Length > 0) Need(dbeta, features, nameof(dbeta));
        _layerNormParams ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(LayerNormParamsKernel);
        Launched(); _layerNormParams(ColumnLaunch(rows, features), dgamma.Length > 0 ? dgamma : dy, dbeta.Length > 0 ? dbeta : dy, dBias.Length > 0 ? dBias : dy,
            dBias.Length > 0 ? dRaw : dy, dy, x, mean, rstd, rows, features, wanted);
    }

    /// <summary>Row Grid.IdxX: its threads take every Group.DimX-th feature, so a warp reads consecutive values. With
    /// <paramref name="summed"/>, x is first written as a + b (each thread reads back only what it wrote).</summary>
    private static void LayerNormKernel(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> a, ArrayView<float> b,
        ArrayView<float> gamma, ArrayView<float> beta, int summed, int features, float eps)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long row = (long)r * features;
        float s = 0f;
        for (int f = first; f < features; f += step)
        {
            float v;
            if (summed != 0) { v = a[row + f] + b[row + f]; x[row + f] = v; }
            else v = x[row + f];
            s += v;
        }
        float mu = GroupSum(s) / features, sq = 0f;
        for (int f = first; f < features; f += step) { float d = x[row + f] - mu; sq += d * d; }
        float rs = 1f / XMath.Sqrt(GroupSum(sq) / features + eps);
        if (first == 0) { mean[r] = mu; rstd[r] = rs; }
        for (int f = first; f < features; f += step) y[row + f] = (x[row + f] - mu) * rs * gamma[f] + beta[f];
    }

    /// <summary>A strip of features as <see cref="ColumnSumsKernel"/> adds a strip of columns, three sums per thread, added
    /// to dγ (<paramref name="wanted"/> bit 1), dβ (bit 2) and a branch's bias gradient from dRaw (bit 4).</summary>
    private static void LayerNormParamsKernel(ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dBias, ArrayView<float> dRaw, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int features, int wanted)
    {
        int f = Grid.IdxX * Group.DimX + Group.IdxX;
        float g = 0f, b = 0f, c = 0f;
        if (f < features)
            for (int r = Group.IdxY; r < rows; r += Group.DimY)
            {
                long i = (long)r * features + f;
                g += dy[i] * (x[i] - mean[r]) * rstd[r];
                b += dy[i];
                if ((wanted & 4) != 0) c += dRaw[i];
            }
        g = SliceSum(g);
        b = SliceSum(b);
        if ((wanted & 4) != 0) c = SliceSum(c); // the same for the whole group, so all its threads meet at the barriers or none
        if (Group.IdxY != 0 || f >= features) return;
        if ((wanted & 1) != 0) dgamma[f] += g;
        if ((wanted & 2) != 0) dbeta[f] += b;
        if ((wanted & 4) != 0) dBias[f] += c;
    }

    /// <summary>Row Grid.IdxX of <see cref="LayerNormOfBranchForward"/>: the sum formed and written as it is read (each
    /// thread reads back only what it wrote), then the norm as <see cref="LayerNormKernel"/>.</summary>
    private static void LayerNormOfBranchKernel(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> sum, ArrayView<float> raw, ArrayView<float> bias,
        ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta, BranchArgs a)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX, features = a.Features;
        long row = (long)r * features;
        float s = 0f;
        for (int f = first; f < features; f += step)
        {
            long i = row + f;
            float t = raw[i];
            if (a.Biased != 0) t += bias[f];
            float v = t * a.Factor(i) + residual[i];
            sum[i] = v;
            s += v;
        }
        float mu = GroupSum(s) / features, sq = 0f;
        for (int f = first; f < features; f += step) { float d = sum[row + f] - mu; sq += d * d; }
        float rs = 1f / XMath.Sqrt(GroupSum(sq) / features + a.Eps);
        if (first == 0) { mean[r] = mu; rstd[r] = rs; }
        for (int f = first; f < features; f += step) y[row + f] = (sum[row + f] - mu) * rs * gamma[f] + beta[f];
    }

    /// <summary>Row Grid.IdxX's input gradient g = rstd·(dy·γ − (Σ dy·γ + x̂·Σ dy·γ·x̂)/F), added to dRaw times the
    /// branch's dropout factor (<paramref name="wanted"/> bit 1; the factor is 1 without a dropout) and to dResidual
    /// (bit 2): a plain norm's input, or a residual sum's two operands.</summary>
    private static void LayerNormDxKernel(ArrayView<float> dRaw, ArrayView<float> dResidual, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, int wanted, BranchArgs a)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX, features = a.Features;
        long row = (long)r * features;
        float mu = mean[r], rs = rstd[r], sumG = 0f, sumGXhat = 0f;
        for (int f = first; f < features; f += step)
        {
            float gd = dy[row + f] * gamma[f];
            sumG += gd; sumGXhat += gd * (x[row + f] - mu) * rs;
        }
        sumG = GroupSum(sumG);
        sumGXhat = GroupSum(sumGXhat);
        for (int f = first; f < features; f += step)
        {
            long i = row + f;
            float xhat = (x[i] - mu) * rs;
            float g = rs * (dy[i] * gamma[f] - (sumG + xhat * sumGXhat) / features);
            if ((wanted & 1) != 0) dRaw[i] += g * a.Factor(i);
            if ((wanted & 2) != 0) dResidual[i] += g;
        }
    }
}
