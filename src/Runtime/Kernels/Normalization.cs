using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: B batch, C channels (features), S spatial size per channel (H·W; 1 for [B, C]); N rows, F features for LayerNorm.
// Statistics are accumulated in double whatever T is, so float and double runs differ only by rounding of the data.
public static class BatchNormKernels
{
    /// <summary>
    /// Training mode: normalise with the batch statistics over (B, S), save mean/invStd [C] for backward, and update
    /// running statistics: running = (1−momentum)·running + momentum·stat, with the unbiased variance, as PyTorch.
    /// </summary>
    public static void ForwardTraining(Span<float> y, Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, int batch, int channels, int spatial, float eps, float momentum)
        => Reference.ForwardTraining(y, saveMean, saveInvStd, runningMean, runningVar, x, gamma, beta, batch, channels, spatial, eps, momentum);

    /// <summary>Evaluation mode: normalise with the running statistics.</summary>
    public static void ForwardInference(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> runningMean, ReadOnlySpan<float> runningVar, int batch, int channels, int spatial, float eps)
        => Reference.ForwardInference(y, x, gamma, beta, runningMean, runningVar, batch, channels, spatial, eps);

    /// <summary>Accumulates dx, dgamma, dbeta (each may be empty to skip) for training-mode batch norm.</summary>
    public static void Backward(Span<float> dx, Span<float> dgamma, Span<float> dbeta, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, ReadOnlySpan<float> gamma, int batch, int channels, int spatial)
        => Reference.Backward(dx, dgamma, dbeta, dy, x, saveMean, saveInvStd, gamma, batch, channels, spatial);

    /// <summary>Generic loops shared by the float kernels and the double-precision tests.</summary>
    public static class Reference
    {
        public static void ForwardTraining<T>(Span<T> y, Span<T> saveMean, Span<T> saveInvStd, Span<T> runningMean, Span<T> runningVar,
            ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, int batch, int channels, int spatial, T eps, T momentum) where T : IFloatingPointIeee754<T>
        {
            long m = (long)batch * spatial;
            for (int c = 0; c < channels; c++)
            {
                double sum = 0, sq = 0;
                for (int b = 0; b < batch; b++)
                {
                    var xs = x.Slice((b * channels + c) * spatial, spatial);
                    foreach (var v in xs) sum += double.CreateChecked(v);
                }
                double mean = sum / m;
                for (int b = 0; b < batch; b++)
                {
                    var xs = x.Slice((b * channels + c) * spatial, spatial);
                    foreach (var v in xs) { double d = double.CreateChecked(v) - mean; sq += d * d; }
                }
                double var = sq / m;
                double inv = 1.0 / Math.Sqrt(var + double.CreateChecked(eps));
                saveMean[c] = T.CreateChecked(mean);
                saveInvStd[c] = T.CreateChecked(inv);
                double mom = double.CreateChecked(momentum);
                double unbiased = m > 1 ? sq / (m - 1) : var;
                runningMean[c] = T.CreateChecked((1 - mom) * double.CreateChecked(runningMean[c]) + mom * mean);
                runningVar[c] = T.CreateChecked((1 - mom) * double.CreateChecked(runningVar[c]) + mom * unbiased);
                T scale = gamma[c] * T.CreateChecked(inv), tMean = T.CreateChecked(mean);
                for (int b = 0; b < batch; b++)
                {
                    int o = (b * channels + c) * spatial;
                    for (int s = 0; s < spatial; s++) y[o + s] = (x[o + s] - tMean) * scale + beta[c];
                }
            }
        }

        public static void ForwardInference<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta,
            ReadOnlySpan<T> runningMean, ReadOnlySpan<T> runningVar, int batch, int channels, int spatial, T eps) where T : IFloatingPointIeee754<T>
        {
            for (int c = 0; c < channels; c++)
            {
                T scale = gamma[c] / T.Sqrt(runningVar[c] + eps), shift = beta[c] - runningMean[c] * scale;
                for (int b = 0; b < batch; b++)
                {
                    int o = (b * channels + c) * spatial;
                    for (int s = 0; s < spatial; s++) y[o + s] = x[o + s] * scale + shift;
                }
            }
        }

        public static void Backward<T>(Span<T> dx, Span<T> dgamma, Span<T> dbeta, ReadOnlySpan<T> dy, ReadOnlySpan<T> x,
            ReadOnlySpan<T> saveMean, ReadOnlySpan<T> saveInvStd, ReadOnlySpan<T> gamma, int batch, int channels, int spatial) where T : IFloatingPointIeee754<T>
        {
            long m = (long)batch * spatial;
            for (int c = 0; c < channels; c++)
            {
                double sumDy = 0, sumDyXhat = 0;
                double mean = double.CreateChecked(saveMean[c]), inv = double.CreateChecked(saveInvStd[c]);
                for (int b = 0; b < batch; b++)
                {
                    int o = (b * channels + c) * spatial;
                    for (int s = 0; s < spatial; s++)
                    {
                        double d = double.CreateChecked(dy[o + s]);
                        sumDy += d;
                        sumDyXhat += d * (double.CreateChecked(x[o + s]) - mean) * inv;
                    }
                }
                if (!dgamma.IsEmpty) dgamma[c] += T.CreateChecked(sumDyXhat);
                if (!dbeta.IsEmpty) dbeta[c] += T.CreateChecked(sumDy);
                if (dx.IsEmpty) continue;
                // dx = γ·inv/m · (m·dy − Σdy − x̂·Σ(dy·x̂))
                double k = double.CreateChecked(gamma[c]) * inv / m;
                for (int b = 0; b < batch; b++)
                {
                    int o = (b * channels + c) * spatial;
                    for (int s = 0; s < spatial; s++)
                    {
                        double xhat = (double.CreateChecked(x[o + s]) - mean) * inv;
                        dx[o + s] += T.CreateChecked(k * (m * double.CreateChecked(dy[o + s]) - sumDy - xhat * sumDyXhat));
                    }
                }
            }
        }
    }
}

public static class LayerNormKernels
{
    /// <summary>y[N,F] = (x − mean)·rstd·gamma + beta per row; saves mean[N], rstd[N] (empty to skip, for inference).</summary>
    public static void Forward(Span<float> y, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, int rows, int features, float eps)
        => Reference.Forward(y, mean, rstd, x, gamma, beta, rows, features, eps);

    /// <summary>Accumulates dx, dgamma, dbeta (each may be empty to skip).</summary>
    public static void Backward(Span<float> dx, Span<float> dgamma, Span<float> dbeta, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, ReadOnlySpan<float> gamma, int rows, int features)
        => Reference.Backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, features);

    /// <summary>Generic loops shared by the float kernels and the double-precision tests.</summary>
    public static class Reference
    {
        public static void Forward<T>(Span<T> y, Span<T> mean, Span<T> rstd, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, int rows, int features, T eps) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            {
                var xr = x.Slice(n * features, features);
                double s = 0, sq = 0;
                foreach (var v in xr) s += double.CreateChecked(v);
                double mu = s / features;
                foreach (var v in xr) { double d = double.CreateChecked(v) - mu; sq += d * d; }
                double r = 1.0 / Math.Sqrt(sq / features + double.CreateChecked(eps));
                if (!mean.IsEmpty) { mean[n] = T.CreateChecked(mu); rstd[n] = T.CreateChecked(r); }
                T tMu = T.CreateChecked(mu), tR = T.CreateChecked(r);
                var yr = y.Slice(n * features, features);
                for (int f = 0; f < features; f++) yr[f] = (xr[f] - tMu) * tR * gamma[f] + beta[f];
            }
        }

        public static void Backward<T>(Span<T> dx, Span<T> dgamma, Span<T> dbeta, ReadOnlySpan<T> dy, ReadOnlySpan<T> x,
            ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> gamma, int rows, int features) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            {
                double mu = double.CreateChecked(mean[n]), r = double.CreateChecked(rstd[n]);
                double sumG = 0, sumGXhat = 0;
                for (int f = 0; f < features; f++)
                {
                    double xhat = (double.CreateChecked(x[n * features + f]) - mu) * r;
                    double d = double.CreateChecked(dy[n * features + f]);
                    double gd = d * double.CreateChecked(gamma[f]);
                    sumG += gd; sumGXhat += gd * xhat;
                    if (!dgamma.IsEmpty) dgamma[f] += T.CreateChecked(d * xhat);
                    if (!dbeta.IsEmpty) dbeta[f] += dy[n * features + f];
                }
                if (dx.IsEmpty) continue;
                for (int f = 0; f < features; f++)
                {
                    double xhat = (double.CreateChecked(x[n * features + f]) - mu) * r;
                    double gd = double.CreateChecked(dy[n * features + f]) * double.CreateChecked(gamma[f]);
                    dx[n * features + f] += T.CreateChecked(r * (gd - (sumG + xhat * sumGXhat) / features));
                }
            }
        }
    }
}
