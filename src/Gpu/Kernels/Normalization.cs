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

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, NormArgs>? _channelSums;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, NormArgs>? _channelDeviations;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormTrain;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormEval;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>? _batchNormGradSums;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, NormArgs>? _batchNormBackward;

    /// <summary>Floats of device state one batch norm over <paramref name="channels"/> keeps: the batch's mean and
    /// inverse deviation (saved for backward), then two per-channel sums.</summary>
    public static long BatchNormState(int channels) => 4L * channels;

    /// <summary>
    /// Training-mode batch norm over x[B, C, spatial] as nn.BatchNorm1d/2d: batch mean and biased variance per channel
    /// by two reductions, y = (x − mean)·γ/√(var + eps) + β; the running mean and unbiased variance move by
    /// <paramref name="momentum"/> and num_batches_tracked grows by one. Three launches.
    /// </summary>
    public void BatchNormForwardTraining(ArrayView<float> y, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> runningMean,
        ArrayView<float> runningVar, ArrayView<float> batchesTracked, ArrayView<float> state, int batch, int channels, int spatial, float eps, float momentum)
    {
        var a = new NormArgs { Batch = batch, Channels = channels, Spatial = spatial, Eps = eps, Momentum = momentum };
        long n = (long)batch * channels * spatial;
        Need(x, n, nameof(x)); Need(y, n, nameof(y)); Need(state, BatchNormState(channels), nameof(state));
        var sums = state.SubView(2L * channels, 2L * channels);
        sums.MemSetToZero();
        _channelSums ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, NormArgs>(ChannelSumsKernel);
        _channelDeviations ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, NormArgs>(ChannelDeviationsKernel);
        _batchNormTrain ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormTrainKernel);
        int threads = checked(channels * batch * Groups(spatial, SumChunk));
        Launched(); _channelSums(threads, sums, x, a);
        Launched(); _channelDeviations(threads, sums, x, a);
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
    /// forward: dγ += Σ dy·x̂, dβ += Σ dy, dx += γ·inv/m·(m·dy − Σdy − x̂·Σ dy·x̂) (dx empty: not needed). Two launches.
    /// </summary>
    public void BatchNormBackward(ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma,
        ArrayView<float> state, int batch, int channels, int spatial)
    {
        var a = new NormArgs { Batch = batch, Channels = channels, Spatial = spatial };
        long n = (long)batch * channels * spatial;
        Need(dy, n, nameof(dy)); Need(x, n, nameof(x)); Need(state, BatchNormState(channels), nameof(state));
        var sums = state.SubView(2L * channels, 2L * channels);
        sums.MemSetToZero();
        _batchNormGradSums ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, NormArgs>(BatchNormGradSumsKernel);
        _batchNormBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, NormArgs>(BatchNormBackwardKernel);
        Launched(); _batchNormGradSums(checked(channels * batch * Groups(spatial, SumChunk)), state, dy, x, a);
        // A view that is not wanted is never passed as an empty one: a flag says so and the kernel leaves it alone.
        Launched(); _batchNormBackward(checked((int)n), dx.Length > 0 ? dx : dy, dgamma, dbeta, dy, x, gamma, state, dx.Length > 0 ? 1 : 0, a);
    }

    /// <summary>Thread (c, b, chunk) adds a chunk of channel c of sample b: sums[c] += Σ x.</summary>
    private static void ChannelSumsKernel(Index1D index, ArrayView<float> sums, ArrayView<float> x, NormArgs a)
    {
        int chunks = (a.Spatial + SumChunk - 1) / SumChunk;
        int chunk = index % chunks, rest = index / chunks;
        int b = rest % a.Batch, c = rest / a.Batch;
        long row = ((long)b * a.Channels + c) * a.Spatial;
        int s0 = chunk * SumChunk, s1 = XMath.Min(a.Spatial, s0 + SumChunk);
        float s = 0f;
        for (int i = s0; i < s1; i++) s += x[row + i];
        Atomic.Add(ref sums[c], s);
    }

    /// <summary>sums[C + c] += Σ (x − mean)², the mean from sums[c] (second pass: no cancellation).</summary>
    private static void ChannelDeviationsKernel(Index1D index, ArrayView<float> sums, ArrayView<float> x, NormArgs a)
    {
        int chunks = (a.Spatial + SumChunk - 1) / SumChunk;
        int chunk = index % chunks, rest = index / chunks;
        int b = rest % a.Batch, c = rest / a.Batch;
        float mean = sums[c] / ((float)a.Batch * a.Spatial);
        long row = ((long)b * a.Channels + c) * a.Spatial;
        int s0 = chunk * SumChunk, s1 = XMath.Min(a.Spatial, s0 + SumChunk);
        float s = 0f;
        for (int i = s0; i < s1; i++) { float d = x[row + i] - mean; s += d * d; }
        Atomic.Add(ref sums[a.Channels + c], s);
    }

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

    /// <summary>state[2C + c] += Σ dy, state[3C + c] += Σ dy·x̂ over a chunk.</summary>
    private static void BatchNormGradSumsKernel(Index1D index, ArrayView<float> state, ArrayView<float> dy, ArrayView<float> x, NormArgs a)
    {
        int chunks = (a.Spatial + SumChunk - 1) / SumChunk;
        int chunk = index % chunks, rest = index / chunks;
        int b = rest % a.Batch, c = rest / a.Batch;
        float mean = state[c], inv = state[a.Channels + c];
        long row = ((long)b * a.Channels + c) * a.Spatial;
        int s0 = chunk * SumChunk, s1 = XMath.Min(a.Spatial, s0 + SumChunk);
        float sd = 0f, sdx = 0f;
        for (int i = s0; i < s1; i++) { float d = dy[row + i]; sd += d; sdx += d * (x[row + i] - mean) * inv; }
        Atomic.Add(ref state[2 * a.Channels + c], sd);
        Atomic.Add(ref state[3 * a.Channels + c], sdx);
    }

    /// <summary>dx per element (when <paramref name="wantDx"/>); the first element of each channel adds dγ and dβ.</summary>
    private static void BatchNormBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy,
        ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> state, int wantDx, NormArgs a)
    {
        int c = (int)(index / a.Spatial % a.Channels);
        float mean = state[c], inv = state[a.Channels + c], sd = state[2 * a.Channels + c], sdx = state[3 * a.Channels + c];
        if (wantDx != 0)
        {
            float m = (float)a.Batch * a.Spatial;
            float xhat = (x[index] - mean) * inv;
            dx[index] += gamma[c] * inv / m * (m * dy[index] - sd - xhat * sdx);
        }
        if (index < a.Channels * a.Spatial && index % a.Spatial == 0)
        {
            dgamma[c] += sdx;
            dbeta[c] += sd;
        }
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _layerNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _layerNormDx;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _layerNormParams;

    /// <summary>nn.LayerNorm over the last dimension: y = (x − mean)·rstd·γ + β per row (biased variance, two passes);
    /// saves each row's mean and rstd for backward. One group per row.</summary>
    public void LayerNormForward(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        int rows, int features, float eps)
    {
        long n = (long)rows * features;
        Need(x, n, nameof(x)); Need(y, n, nameof(y)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd)); Need(gamma, features, nameof(gamma)); Need(beta, features, nameof(beta));
        if (rows == 0) return;
        _layerNorm ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(LayerNormKernel);
        Launched(); _layerNorm(RowConfig(rows, features), y, mean, rstd, x, gamma, beta, features, eps);
    }

    /// <summary>LayerNorm's gradients: dx += rstd·(g·γ − (Σ g·γ + x̂·Σ g·γ·x̂)/F) per row (dx empty: not needed), and
    /// dγ += Σ g·x̂, dβ += Σ g per feature over blocks of rows (one atomic add per block). One or two launches.</summary>
    public void LayerNormBackward(ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int features)
    {
        long n = (long)rows * features;
        Need(dy, n, nameof(dy)); Need(x, n, nameof(x)); Need(mean, rows, nameof(mean)); Need(rstd, rows, nameof(rstd));
        if (rows == 0) return;
        if (dx.Length > 0)
        {
            Need(dx, n, nameof(dx));
            _layerNormDx ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(LayerNormDxKernel);
            Launched(); _layerNormDx(RowConfig(rows, features), dx, dy, x, mean, rstd, gamma, features);
        }
        _layerNormParams ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(LayerNormParamsKernel);
        Launched(); _layerNormParams(checked(features * Groups(rows, RowBlock)), dgamma, dbeta, dy, x, mean, rstd, rows, features);
    }

    /// <summary>Rows one thread of a per-feature gradient sum walks down its column.</summary>
    private const int RowBlock = 32;

    /// <summary>Row Grid.IdxX: its threads take every Group.DimX-th feature, so a warp reads consecutive values.</summary>
    private static void LayerNormKernel(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x, ArrayView<float> gamma,
        ArrayView<float> beta, int features, float eps)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long row = (long)r * features;
        float s = 0f;
        for (int f = first; f < features; f += step) s += x[row + f];
        float mu = GroupSum(s) / features, sq = 0f;
        for (int f = first; f < features; f += step) { float d = x[row + f] - mu; sq += d * d; }
        float rs = 1f / XMath.Sqrt(GroupSum(sq) / features + eps);
        if (first == 0) { mean[r] = mu; rstd[r] = rs; }
        for (int f = first; f < features; f += step) y[row + f] = (x[row + f] - mu) * rs * gamma[f] + beta[f];
    }

    private static void LayerNormDxKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, int features)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
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
            float xhat = (x[row + f] - mu) * rs;
            dx[row + f] += rs * (dy[row + f] * gamma[f] - (sumG + xhat * sumGXhat) / features);
        }
    }

    private static void LayerNormParamsKernel(Index1D index, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int features)
    {
        int f = index % features, r0 = index / features * RowBlock, r1 = XMath.Min(rows, r0 + RowBlock);
        float g = 0f, b = 0f;
        for (int r = r0; r < r1; r++)
        {
            long i = (long)r * features + f;
            g += dy[i] * (x[i] - mean[r]) * rstd[r];
            b += dy[i];
        }
        Atomic.Add(ref dgamma[f], g);
        Atomic.Add(ref dbeta[f], b);
    }
}
