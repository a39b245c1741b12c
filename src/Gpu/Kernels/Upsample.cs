using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// nn.Upsample(scale_factor=s) on the device, as UpsampleKernels on the CPU: P planes of [H, W] become [H·s, W·s].
// Forward is one thread per output; backward one thread per input pixel gathering the outputs it fed (no atomics).
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>? _upsample, _upsampleBackward;

    /// <summary>y = upsampling of x by <paramref name="scale"/>: nearest, or bilinear with align_corners=False.</summary>
    public void UpsampleForward(ArrayView<float> y, ArrayView<float> x, int planes, int height, int width, int scale, bool bilinear)
    {
        long n = (long)planes * height * width;
        Need(x, n, nameof(x)); Need(y, n * scale * scale, nameof(y));
        _upsample ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(UpsampleKernel);
        Launched(); _upsample(checked((int)(n * scale * scale)), y, x, height, width, scale, bilinear ? 1 : 0);
    }

    /// <summary>dx += the gradient of <see cref="UpsampleForward"/>.</summary>
    public void UpsampleBackward(ArrayView<float> dx, ArrayView<float> dy, int planes, int height, int width, int scale, bool bilinear)
    {
        long n = (long)planes * height * width;
        Need(dx, n, nameof(dx)); Need(dy, n * scale * scale, nameof(dy));
        _upsampleBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(UpsampleBackwardKernel);
        Launched(); _upsampleBackward(checked((int)n), dx, dy, height, width, scale, bilinear ? 1 : 0);
    }

    /// <summary>Output index o's first source index (PyTorch's area_pixel_compute_source_index, align_corners=False).</summary>
    private static int Source0(int o, int scale, int size)
    {
        float src = XMath.Max(0f, (o + 0.5f) / scale - 0.5f);
        int i0 = (int)src;
        return i0 < size - 1 ? i0 : size - 1;
    }

    /// <summary>The weight output index o gives source index <paramref name="i"/> along one dimension (0 when it gives none).</summary>
    private static float Weight(int o, int i, int scale, int size)
    {
        float src = XMath.Max(0f, (o + 0.5f) / scale - 0.5f);
        int i0 = Source0(o, scale, size);
        int i1 = i0 < size - 1 ? i0 + 1 : i0;
        float w1 = src - i0;
        float w = 0f;
        if (i == i0) w += 1f - w1;
        if (i == i1) w += w1;
        return w;
    }

    private static void UpsampleKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, int height, int width, int scale, int bilinear)
    {
        int i = index;
        int ow = width * scale, oh = height * scale;
        int j = i % ow, r = i / ow % oh, p = i / (ow * oh);
        long plane = (long)p * height * width;
        if (bilinear == 0) { y[i] = x[plane + (long)(r / scale) * width + j / scale]; return; }
        int r0 = Source0(r, scale, height), c0 = Source0(j, scale, width);
        int r1 = r0 < height - 1 ? r0 + 1 : r0, c1 = c0 < width - 1 ? c0 + 1 : c0;
        float wr = XMath.Max(0f, (r + 0.5f) / scale - 0.5f) - r0, wc = XMath.Max(0f, (j + 0.5f) / scale - 0.5f) - c0;
        float top = x[plane + (long)r0 * width + c0] * (1 - wc) + x[plane + (long)r0 * width + c1] * wc;
        float bottom = x[plane + (long)r1 * width + c0] * (1 - wc) + x[plane + (long)r1 * width + c1] * wc;
        y[i] = top * (1 - wr) + bottom * wr;
    }

    private static void UpsampleBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, int height, int width, int scale, int bilinear)
    {
        int i = index;
        int c = i % width, r = i / width % height, p = i / (width * height);
        int ow = width * scale, oh = height * scale;
        long plane = (long)p * oh * ow;
        float sum = 0f;
        if (bilinear == 0)
        {
            for (int a = 0; a < scale; a++)
                for (int b = 0; b < scale; b++) sum += dy[plane + (long)(r * scale + a) * ow + c * scale + b];
            dx[i] += sum;
            return;
        }
        // The outputs that read source row r lie within a scale and a half of r·scale (likewise for columns).
        int rFrom = XMath.Max(0, (r - 1) * scale), rTo = XMath.Min(oh, (r + 2) * scale);
        int cFrom = XMath.Max(0, (c - 1) * scale), cTo = XMath.Min(ow, (c + 2) * scale);
        for (int a = rFrom; a < rTo; a++)
        {
            float wr = Weight(a, r, scale, height);
            if (wr == 0f) continue;
            for (int b = cFrom; b < cTo; b++)
            {
                float wc = Weight(b, c, scale, width);
                if (wc != 0f) sum += dy[plane + (long)a * ow + b] * wr * wc;
            }
        }
        dx[i] += sum;
    }
}
