using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// Depthwise convolution (groups = C, one input channel per group, m outputs each) on the device: direct kernels, one
// thread per output or per input pixel, each a sum over its own taps, and one group per weight, whose threads share its
// sum over the batch and the output plane — no atomics and no GEMM (the per-group GEMMs would be too thin to fill a device).
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>? _depthwise;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>? _depthwiseDx;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>? _depthwiseDw;

    /// <summary>y[B, G·m, OH, OW] = depthwise conv(x[B, G, H, W], w[G·m, 1, KH, KW]) + bias (empty: none); <paramref name="group"/>
    /// is one group's geometry (1 input channel, m outputs). One launch.</summary>
    public void DepthwiseForward(ArrayView<float> y, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, in Conv2dGeometry group, int groups)
    {
        var a = ConvArgs.Of(group);
        long n = (long)a.Batch * groups * a.O * a.Pixels;
        Need(y, n, nameof(y)); Need(x, (long)a.Batch * groups * a.H * a.W, nameof(x)); Need(w, (long)groups * a.O * a.Kh * a.Kw, nameof(w));
        _depthwise ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>(DepthwiseKernel);
        Launched(); _depthwise(checked((int)n), y, x, w, bias.Length > 0 ? bias : w, a, groups | (bias.Length > 0 ? 1 << 30 : 0));
    }

    /// <summary>dx += ∂L/∂x (empty: not needed), dw += ∂L/∂w, db += ∂L/∂b (empty: none) of <see cref="DepthwiseForward"/>. Up to three launches.</summary>
    public void DepthwiseBackward(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w, in Conv2dGeometry group, int groups)
    {
        var a = ConvArgs.Of(group);
        Need(dy, (long)a.Batch * groups * a.O * a.Pixels, nameof(dy));
        if (db.Length > 0) AddChannelSums(db, dy, a.Batch, groups * a.O, a.Pixels);
        if (dw.Length > 0)
        {
            Need(dw, (long)groups * a.O * a.Kh * a.Kw, nameof(dw));
            _depthwiseDw ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>(DepthwiseDwKernel);
            Launched(); _depthwiseDw(RowConfig(checked(groups * a.O * a.Kh * a.Kw), checked(a.Batch * a.Pixels)), dw, dy, x, a, groups);
        }
        if (dx.Length > 0)
        {
            Need(dx, (long)a.Batch * groups * a.H * a.W, nameof(dx));
            _depthwiseDx ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>(DepthwiseDxKernel);
            Launched(); _depthwiseDx(checked(a.Batch * groups * a.H * a.W), dx, dy, w, a, groups);
        }
    }

    private static void DepthwiseKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ConvArgs a, int flags)
    {
        int groups = flags & ((1 << 30) - 1);
        int i = index;
        int ow = i % a.Ow, oh = i / a.Ow % a.Oh, o = i / a.Pixels % (groups * a.O), b = i / a.Pixels / (groups * a.O);
        int c = o / a.O;
        float sum = (flags & (1 << 30)) != 0 ? bias[o] : 0f;
        long plane = ((long)b * groups + c) * a.H * a.W;
        for (int kh = 0; kh < a.Kh; kh++)
        {
            int ih = oh * a.Sh - a.Ph + kh * a.Dh;
            if (ih < 0 || ih >= a.H) continue;
            for (int kw = 0; kw < a.Kw; kw++)
            {
                int iw = ow * a.Sw - a.Pw + kw * a.Dw;
                if (iw >= 0 && iw < a.W) sum += w[((long)o * a.Kh + kh) * a.Kw + kw] * x[plane + (long)ih * a.W + iw];
            }
        }
        y[i] = sum;
    }

    /// <summary>One thread per input pixel: the outputs whose windows cover it, through each tap that reaches it.</summary>
    private static void DepthwiseDxKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> w, ConvArgs a, int groups)
    {
        int i = index;
        int iw = i % a.W, ih = i / a.W % a.H, c = i / (a.H * a.W) % groups, b = i / (a.H * a.W) / groups;
        float sum = 0f;
        for (int j = 0; j < a.O; j++)
        {
            int o = c * a.O + j;
            long outPlane = ((long)b * groups * a.O + o) * a.Pixels;
            for (int kh = 0; kh < a.Kh; kh++)
            {
                int th = ih + a.Ph - kh * a.Dh;
                if (th < 0 || th % a.Sh != 0 || th / a.Sh >= a.Oh) continue;
                for (int kw = 0; kw < a.Kw; kw++)
                {
                    int tw = iw + a.Pw - kw * a.Dw;
                    if (tw < 0 || tw % a.Sw != 0 || tw / a.Sw >= a.Ow) continue;
                    sum += w[((long)o * a.Kh + kh) * a.Kw + kw] * dy[outPlane + (long)(th / a.Sh) * a.Ow + tw / a.Sw];
                }
            }
        }
        dx[i] += sum;
    }

    /// <summary>One group per weight: its tap's products over the batch and the output plane, each thread taking every
    /// Group.DimX-th output position.</summary>
    private static void DepthwiseDwKernel(ArrayView<float> dw, ArrayView<float> dy, ArrayView<float> x, ConvArgs a, int groups)
    {
        int i = Grid.IdxX;
        int kw = i % a.Kw, kh = i / a.Kw % a.Kh, o = i / (a.Kh * a.Kw);
        int c = o / a.O;
        float sum = 0f;
        for (int q = Group.IdxX; q < a.Batch * a.Pixels; q += Group.DimX)
        {
            int b = q / a.Pixels, oh = q % a.Pixels / a.Ow, ow = q % a.Ow;
            int ih = oh * a.Sh - a.Ph + kh * a.Dh, iw = ow * a.Sw - a.Pw + kw * a.Dw;
            if (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W)
                sum += dy[((long)b * groups * a.O + o) * a.Pixels + q % a.Pixels] * x[((long)b * groups + c) * a.H * a.W + (long)ih * a.W + iw];
        }
        sum = GroupSum(sum);
        if (Group.IdxX == 0) dw[i] += sum;
    }
}
