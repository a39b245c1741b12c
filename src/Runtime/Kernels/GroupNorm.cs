using System.Numerics;
using System.Numerics.Tensors;

namespace Compiled.Nets.Kernels;

// nn.GroupNorm over [B, C, S] (S: the positions of a channel, H·W for images): the channels split into G groups, each
// sample's group of C/G channels × S values normalised with its own mean and variance (biased), then a per-channel
// affine. A group is one contiguous block of C/G·S values. mean and rstd are [B, G].
public static class GroupNormKernels
{
    /// <summary>y = (x − mean)·rstd·w[c] + b[c] per (sample, group); saves mean and rstd when given (training).</summary>
    /// <exception cref="ArgumentException">When groups does not divide the channels or a span is too short.</exception>
    public static void Forward(Span<float> y, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        int batch, int channels, int positions, int groups, float eps)
    {
        int per = Check(y.Length, x.Length, weight.Length, bias.Length, batch, channels, positions, groups);
        int cg = channels / groups;
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < groups; g++)
            {
                int start = (b * groups + g) * per;
                var block = x.Slice(start, per);
                double sum = 0, squares = 0;
                foreach (float v in block) { sum += v; squares += (double)v * v; }
                double mu = sum / per, variance = Math.Max(0, squares / per - mu * mu);
                float m = (float)mu, r = (float)(1 / Math.Sqrt(variance + eps));
                if (!mean.IsEmpty) { mean[b * groups + g] = m; rstd[b * groups + g] = r; }
                for (int c = 0; c < cg; c++)
                {
                    int channel = g * cg + c;
                    float scale = r * (weight.IsEmpty ? 1f : weight[channel]), shift = (bias.IsEmpty ? 0f : bias[channel]) - m * scale;
                    var src = x.Slice(start + c * positions, positions);
                    var dst = y.Slice(start + c * positions, positions);
                    TensorPrimitives.Multiply(src, scale, dst);
                    TensorPrimitives.Add(dst, shift, dst);
                }
            }
    }

    /// <summary>dx += the input gradient; dw[c] += Σ dy·x̂, db[c] += Σ dy (empty spans skip them).</summary>
    public static void Backward(Span<float> dx, Span<float> dw, Span<float> db, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> weight, int batch, int channels, int positions, int groups)
    {
        int per = Check(dy.Length, x.Length, weight.Length, 0, batch, channels, positions, groups);
        int cg = channels / groups;
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < groups; g++)
            {
                int start = (b * groups + g) * per;
                float m = mean[b * groups + g], r = rstd[b * groups + g];
                // Σ over the group of dx̂ and dx̂·x̂, with dx̂ = dy·w[c].
                double sumG = 0, sumGX = 0;
                for (int c = 0; c < cg; c++)
                {
                    int channel = g * cg + c;
                    float w = weight.IsEmpty ? 1f : weight[channel];
                    var gy = dy.Slice(start + c * positions, positions);
                    var xs = x.Slice(start + c * positions, positions);
                    double channelSum = 0, channelDot = 0;
                    for (int i = 0; i < positions; i++) { channelSum += gy[i]; channelDot += gy[i] * (xs[i] - m) * r; }
                    if (!db.IsEmpty) db[channel] += (float)channelSum;
                    if (!dw.IsEmpty) dw[channel] += (float)channelDot;
                    sumG += w * channelSum; sumGX += w * channelDot;
                }
                if (dx.IsEmpty) continue;
                float meanG = (float)(sumG / per), meanGX = (float)(sumGX / per);
                for (int c = 0; c < cg; c++)
                {
                    int channel = g * cg + c;
                    float w = weight.IsEmpty ? 1f : weight[channel];
                    var gy = dy.Slice(start + c * positions, positions);
                    var xs = x.Slice(start + c * positions, positions);
                    var d = dx.Slice(start + c * positions, positions);
                    for (int i = 0; i < positions; i++) d[i] += r * (gy[i] * w - meanG - (xs[i] - m) * r * meanGX);
                }
            }
    }

    private static int Check(int y, int x, int weight, int bias, int batch, int channels, int positions, int groups)
    {
        if (groups <= 0 || channels % groups != 0) throw new ArgumentException($"GroupNorm: {groups} groups must divide {channels} channels.");
        long need = (long)batch * channels * positions;
        if (y < need || x < need || weight != 0 && weight < channels || bias != 0 && bias < channels)
            throw new ArgumentException($"GroupNorm over [{batch}, {channels}, {positions}] needs {need} values per span and {channels} weights; got {y}, {x}, {weight} and {bias}.");
        return channels / groups * positions;
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, int batch, int channels, int positions, int groups, T eps)
            where T : IFloatingPointIeee754<T>
        {
            int per = channels / groups * positions, cg = channels / groups;
            for (int b = 0; b < batch; b++)
                for (int g = 0; g < groups; g++)
                {
                    int start = (b * groups + g) * per;
                    T mu = T.Zero, variance = T.Zero, n = T.CreateChecked(per);
                    for (int i = 0; i < per; i++) mu += x[start + i];
                    mu /= n;
                    for (int i = 0; i < per; i++) variance += (x[start + i] - mu) * (x[start + i] - mu);
                    T r = T.One / T.Sqrt(variance / n + eps);
                    for (int i = 0; i < per; i++)
                    {
                        int channel = g * cg + i / positions;
                        y[start + i] = (x[start + i] - mu) * r * weight[channel] + bias[channel];
                    }
                }
        }
    }
}
