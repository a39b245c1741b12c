using System.Numerics;

namespace Compiled.Nets.Kernels;

// nn.Upsample(scale_factor=s) over planes: P = B·C planes of [H, W] become [H·s, W·s]. Nearest takes the source
// pixel floor(o / s); bilinear (align_corners=False) samples at (o + ½)/s − ½, clamped at the edges, as PyTorch does.
public static class UpsampleKernels
{
    /// <summary>y = nearest-neighbour upsampling of x (overwrites y).</summary>
    public static void NearestForward(Span<float> y, ReadOnlySpan<float> x, int planes, int height, int width, int scale)
    {
        int oh = height * scale, ow = width * scale;
        Check(y.Length, x.Length, planes, height, width, scale);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
            {
                var src = x.Slice((p * height + i / scale) * width, width);
                var dst = y.Slice((p * oh + i) * ow, ow);
                for (int j = 0; j < ow; j++) dst[j] = src[j / scale];
            }
    }

    /// <summary>dx += the sum of dy over each source pixel's s×s copies.</summary>
    public static void NearestBackward(Span<float> dx, ReadOnlySpan<float> dy, int planes, int height, int width, int scale)
    {
        int oh = height * scale, ow = width * scale;
        Check(dy.Length, dx.Length, planes, height, width, scale);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
            {
                var src = dy.Slice((p * oh + i) * ow, ow);
                var dst = dx.Slice((p * height + i / scale) * width, width);
                for (int j = 0; j < ow; j++) dst[j / scale] += src[j];
            }
    }

    /// <summary>y = bilinear upsampling of x (align_corners=False; overwrites y).</summary>
    public static void BilinearForward(Span<float> y, ReadOnlySpan<float> x, int planes, int height, int width, int scale)
    {
        int oh = height * scale, ow = width * scale;
        Check(y.Length, x.Length, planes, height, width, scale);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
            {
                var (r0, r1, wr) = Source(i, scale, height);
                for (int j = 0; j < ow; j++)
                {
                    var (c0, c1, wc) = Source(j, scale, width);
                    int b = p * height * width;
                    float top = x[b + r0 * width + c0] * (1 - wc) + x[b + r0 * width + c1] * wc;
                    float bottom = x[b + r1 * width + c0] * (1 - wc) + x[b + r1 * width + c1] * wc;
                    y[(p * oh + i) * ow + j] = top * (1 - wr) + bottom * wr;
                }
            }
    }

    /// <summary>dx += the bilinear weights' share of dy.</summary>
    public static void BilinearBackward(Span<float> dx, ReadOnlySpan<float> dy, int planes, int height, int width, int scale)
    {
        int oh = height * scale, ow = width * scale;
        Check(dy.Length, dx.Length, planes, height, width, scale);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
            {
                var (r0, r1, wr) = Source(i, scale, height);
                for (int j = 0; j < ow; j++)
                {
                    var (c0, c1, wc) = Source(j, scale, width);
                    int b = p * height * width;
                    float g = dy[(p * oh + i) * ow + j];
                    dx[b + r0 * width + c0] += g * (1 - wr) * (1 - wc);
                    dx[b + r0 * width + c1] += g * (1 - wr) * wc;
                    dx[b + r1 * width + c0] += g * wr * (1 - wc);
                    dx[b + r1 * width + c1] += g * wr * wc;
                }
            }
    }

    /// <summary>The two source indices of output index o and the second one's weight (PyTorch's area_pixel_compute_source_index).</summary>
    private static (int I0, int I1, float W1) Source(int o, int scale, int size)
    {
        float src = Math.Max(0f, (o + 0.5f) / scale - 0.5f);
        int i0 = Math.Min((int)src, size - 1);
        int i1 = i0 < size - 1 ? i0 + 1 : i0;
        return (i0, i1, src - i0);
    }

    private static void Check(int up, int down, int planes, int height, int width, int scale)
    {
        if (planes <= 0 || height <= 0 || width <= 0 || scale <= 0) throw new ArgumentException($"Upsample: {planes} planes of [{height}, {width}] by {scale} need positive sizes.");
        if (down < (long)planes * height * width || up < (long)planes * height * width * scale * scale)
            throw new ArgumentException($"Upsample: {planes} planes of [{height}, {width}] by {scale} need {(long)planes * height * width} and {(long)planes * height * width * scale * scale} values; got {down} and {up}.");
    }
}
