using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>A pooling's geometry as kernel scalars.</summary>
internal struct PoolArgs
{
    public int Planes, H, W, Kh, Kw, Sh, Sw, Ph, Pw, Oh, Ow;
    /// <summary>1: a ReLU follows the max-pool in the same kernel.</summary>
    public int Relu;
    /// <summary>1: the input is a convolution's GEMM output, [Channels, B·H·W] (plane b·C + c at row c, column b·H·W).</summary>
    public int Columns;
    /// <summary>Channels of a <see cref="Columns"/> input; 1 where the bias of its channel is added as it is read.</summary>
    public int Channels, Biased;

    public static PoolArgs Of(in Pool2dGeometry g) => new()
    {
        Planes = g.Batch * g.Channels, H = g.InHeight, W = g.InWidth, Kh = g.KernelH, Kw = g.KernelW,
        Sh = g.StrideH, Sw = g.StrideW, Ph = g.PadH, Pw = g.PadW, Oh = g.OutHeight, Ow = g.OutWidth,
    };
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, PoolArgs>? _maxPool;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolArgs>? _maxPoolBackward;

    /// <summary>y = max over each window (padding never wins; NaN wins, as in PyTorch); argmax keeps the winner's
    /// index within its input plane for backward.</summary>
    public void MaxPool2dForward(ArrayView<float> y, ArrayView<int> argmax, ArrayView<float> x, in Pool2dGeometry g) => MaxPool(y, argmax, x, x, PoolArgs.Of(g));

    /// <summary>y = ReLU(max over each window) in one launch (ReLU commutes with max: the pool's own output is never
    /// stored); argmax as <see cref="MaxPool2dForward"/>.</summary>
    public void MaxPool2dReluForward(ArrayView<float> y, ArrayView<int> argmax, ArrayView<float> x, in Pool2dGeometry g) => MaxPool(y, argmax, x, x, PoolArgs.Of(g) with { Relu = 1 });

    /// <summary>The max-pool launch; <paramref name="bias"/> is read only when <see cref="PoolArgs.Biased"/>.</summary>
    private void MaxPool(ArrayView<float> y, ArrayView<int> argmax, ArrayView<float> x, ArrayView<float> bias, PoolArgs a)
    {
        long n = (long)a.Planes * a.Oh * a.Ow;
        Need(y, n, nameof(y)); Need(argmax, n, nameof(argmax)); Need(x, (long)a.Planes * a.H * a.W, nameof(x));
        _maxPool ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, PoolArgs>(MaxPoolKernel);
        Launched();
        _maxPool(checked((int)n), y, argmax, x, bias, a);
    }

    /// <summary>dx[argmax] += dy. One thread per input element gathers from the windows that cover it, in order (no
    /// atomics where windows overlap: the same bits every run).</summary>
    public void MaxPool2dBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> argmax, in Pool2dGeometry g) => MaxPoolBackward(dx, dy, dy, argmax, PoolArgs.Of(g));

    /// <summary>The gradient of <see cref="MaxPool2dReluForward"/> from its output y: dx[argmax] += dy where y &gt; 0.</summary>
    public void MaxPool2dReluBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax, in Pool2dGeometry g)
    {
        var a = PoolArgs.Of(g) with { Relu = 1 };
        Need(y, (long)a.Planes * a.Oh * a.Ow, nameof(y));
        MaxPoolBackward(dx, dy, y, argmax, a);
    }

    private void MaxPoolBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax, PoolArgs a)
    {
        long n = (long)a.Planes * a.Oh * a.Ow, inputs = (long)a.Planes * a.H * a.W;
        Need(dy, n, nameof(dy)); Need(argmax, n, nameof(argmax)); Need(dx, inputs, nameof(dx));
        _maxPoolBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolArgs>(MaxPoolBackwardKernel);
        Launched();
        _maxPoolBackward(checked((int)inputs), dx, dy, y, argmax, a);
    }

    private static void MaxPoolKernel(Index1D index, ArrayView<float> y, ArrayView<int> argmax, ArrayView<float> x, ArrayView<float> bias, PoolArgs a)
    {
        int j = index % a.Ow;
        int i = index / a.Ow % a.Oh;
        long plane = index / (a.Ow * a.Oh);
        long baseIndex = plane * a.H * a.W;
        float add = 0f;
        if (a.Columns != 0)
        {
            long c = plane % a.Channels;
            baseIndex = (c * (a.Planes / a.Channels) + plane / a.Channels) * a.H * a.W;
            if (a.Biased != 0) add = bias[c];
        }
        float best = float.NegativeInfinity;
        int bestIndex = -1;
        bool nan = false;
        for (int ki = 0; ki < a.Kh && !nan; ki++)
        {
            int hi = i * a.Sh - a.Ph + ki;
            if (hi < 0 || hi >= a.H) continue;
            for (int kj = 0; kj < a.Kw; kj++)
            {
                int wj = j * a.Sw - a.Pw + kj;
                if (wj < 0 || wj >= a.W) continue;
                float v = x[baseIndex + hi * a.W + wj];
                if (a.Biased != 0) v += add;
                if (v > best || float.IsNaN(v) || bestIndex < 0)
                {
                    best = v; bestIndex = hi * a.W + wj;
                    if (float.IsNaN(v)) { nan = true; break; }
                }
            }
        }
        y[index] = a.Relu != 0 ? Elementwise.Relu(best) : best;
        argmax[index] = bestIndex;
    }

    /// <summary>Input element <paramref name="index"/>: the sum of dy over the windows that cover it and chose it (y is
    /// the pool's output, read only after a ReLU, whose gradient it gates).</summary>
    private static void MaxPoolBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax, PoolArgs a)
    {
        long plane = Windows(index, a, out int at, out int i0, out int i1, out int j0, out int j1);
        dx[index] += ChosenGradient(dy, y, argmax, a, plane, at, i0, i1, j0, j1);
    }

    /// <summary>Σ dy over the windows [i0, i1] × [j0, j1] of the plane whose outputs start at <paramref name="plane"/>
    /// that chose input position <paramref name="at"/> (through the ReLU from y when <see cref="PoolArgs.Relu"/>).</summary>
    private static float ChosenGradient(ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax, PoolArgs a, long plane, int at, int i0, int i1, int j0, int j1)
    {
        float s = 0f;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++)
            {
                long o = plane + i * a.Ow + j;
                if (argmax[o] == at) s += a.Relu != 0 ? Elementwise.ReluGrad(y[o], dy[o]) : dy[o];
            }
        return s;
    }

    /// <summary>
    /// Channel Grid.IdxX of the convolution a max-pool reads (<see cref="PoolArgs.Columns"/>): dyT[c, b·H·W + at] = the
    /// sum of dy over the windows of plane (b, c) that cover position at and chose it (through the ReLU from y), and
    /// with <see cref="PoolArgs.Biased"/> db[c] += the row's sum; each thread every Group.DimX-th value, the threads'
    /// sums met in a fixed order.
    /// </summary>
    private static void PooledConvGradientKernel(ArrayView<float> dyT, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax, PoolArgs a)
    {
        int c = Grid.IdxX, hw = a.H * a.W;
        long bp = (long)(a.Planes / a.Channels) * hw, row = c * bp;
        float sum = 0f;
        for (long q = Group.IdxX; q < bp; q += Group.DimX)
        {
            int b = (int)(q / hw), at = (int)(q % hw);
            Windows(at / a.W, a.Kh, a.Sh, a.Ph, a.Oh, out int i0, out int i1);
            Windows(at % a.W, a.Kw, a.Sw, a.Pw, a.Ow, out int j0, out int j1);
            float s = ChosenGradient(dy, y, argmax, a, ((long)b * a.Channels + c) * a.Oh * a.Ow, at, i0, i1, j0, j1);
            dyT[row + q] = s;
            sum += s;
        }
        sum = GroupSum(sum);
        if (Group.IdxX == 0 && a.Biased != 0) db[c] += sum;
    }

    /// <summary>Input element <paramref name="index"/>: its offset in its plane, the rows [i0, i1] and columns [j0, j1]
    /// of the windows that cover it; returns where its plane's outputs start.</summary>
    private static long Windows(Index1D index, PoolArgs a, out int at, out int i0, out int i1, out int j0, out int j1)
    {
        at = (int)(index % ((long)a.H * a.W));
        Windows(at / a.W, a.Kh, a.Sh, a.Ph, a.Oh, out i0, out i1);
        Windows(at % a.W, a.Kw, a.Sw, a.Pw, a.Ow, out j0, out j1);
        return index / ((long)a.H * a.W) * a.Oh * a.Ow;
    }

    /// <summary>The first and last of <paramref name="count"/> windows (kernel k, stride s, padding p) that cover
    /// input position <paramref name="x"/>; none when last &lt; first.</summary>
    private static void Windows(int x, int k, int s, int p, int count, out int first, out int last)
    {
        int top = x + p - k + 1;
        first = top <= 0 ? 0 : (top + s - 1) / s;
        last = XMath.Min(count - 1, (x + p) / s);
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>? _adaptiveAvg, _adaptiveAvgBackward;

    /// <summary>nn.AdaptiveAvgPool2d: each of <paramref name="planes"/> H×W planes to OH×OW, bin i spanning
    /// [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) as PyTorch's.</summary>
    public void AdaptiveAvgPool2dForward(ArrayView<float> y, ArrayView<float> x, int planes, int h, int w, int oh, int ow)
    {
        var a = new PoolArgs { Planes = planes, H = h, W = w, Oh = oh, Ow = ow };
        Need(x, (long)planes * h * w, nameof(x)); Need(y, (long)planes * oh * ow, nameof(y));
        if (oh == 1 && ow == 1 && planes > 0)
        {
            // Global average pooling: a group of threads per plane, not one thread walking it.
            _globalAvg ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(GlobalAvgKernel);
            Launched(); _globalAvg(RowConfig(planes, checked(h * w)), y, x, h * w);
            return;
        }
        _adaptiveAvg ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>(AdaptiveAvgKernel);
        Launched(); _adaptiveAvg(checked(planes * oh * ow), y, x, a);
    }

    /// <summary>dx += dy spread evenly over each bin (a gather per input element: no atomics).</summary>
    public void AdaptiveAvgPool2dBackward(ArrayView<float> dx, ArrayView<float> dy, int planes, int h, int w, int oh, int ow)
    {
        var a = new PoolArgs { Planes = planes, H = h, W = w, Oh = oh, Ow = ow };
        Need(dx, (long)planes * h * w, nameof(dx)); Need(dy, (long)planes * oh * ow, nameof(dy));
        _adaptiveAvgBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>(AdaptiveAvgBackwardKernel);
        Launched(); _adaptiveAvgBackward(checked(planes * h * w), dx, dy, a);
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>? _globalAvg;

    /// <summary>Plane Grid.IdxX's mean, its threads taking every Group.DimX-th value.</summary>
    private static void GlobalAvgKernel(ArrayView<float> y, ArrayView<float> x, int plane)
    {
        long start = (long)Grid.IdxX * plane;
        float s = 0f;
        for (int i = Group.IdxX; i < plane; i += Group.DimX) s += x[start + i];
        s = GroupSum(s);
        if (Group.IdxX == 0) y[Grid.IdxX] = s / plane;
    }

    private static void AdaptiveAvgKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, PoolArgs a)
    {
        int j = index % a.Ow, i = index / a.Ow % a.Oh;
        long plane = index / (a.Ow * a.Oh) * (long)a.H * a.W;
        int r0 = i * a.H / a.Oh, r1 = ((i + 1) * a.H + a.Oh - 1) / a.Oh;
        int c0 = j * a.W / a.Ow, c1 = ((j + 1) * a.W + a.Ow - 1) / a.Ow;
        float s = 0f;
        for (int r = r0; r < r1; r++)
            for (int c = c0; c < c1; c++) s += x[plane + r * a.W + c];
        y[index] = s / ((r1 - r0) * (c1 - c0));
    }

    private static void AdaptiveAvgBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, PoolArgs a)
    {
        int c = index % a.W, r = index / a.W % a.H;
        long plane = index / (a.W * a.H) * (long)a.Oh * a.Ow;
        float s = 0f;
        for (int i = 0; i < a.Oh; i++)
        {
            int r0 = i * a.H / a.Oh, r1 = ((i + 1) * a.H + a.Oh - 1) / a.Oh;
            if (r < r0 || r >= r1) continue;
            for (int j = 0; j < a.Ow; j++)
            {
                int c0 = j * a.W / a.Ow, c1 = ((j + 1) * a.W + a.Ow - 1) / a.Ow;
                if (c >= c0 && c < c1) s += dy[plane + i * a.Ow + j] / ((r1 - r0) * (c1 - c0));
            }
        }
        dx[index] += s;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>? _avgPool, _avgPoolBackward;

    /// <summary>nn.AvgPool2d (count_include_pad: the divisor is the window clipped to the padded input).</summary>
    public void AvgPool2dForward(ArrayView<float> y, ArrayView<float> x, in Pool2dGeometry g)
    {
        var a = PoolArgs.Of(g);
        long n = (long)a.Planes * a.Oh * a.Ow;
        Need(y, n, nameof(y)); Need(x, (long)a.Planes * a.H * a.W, nameof(x));
        _avgPool ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>(AvgPoolKernel);
        Launched(); _avgPool(checked((int)n), y, x, a);
    }

    /// <summary>dx += each window's dy / divisor, gathered per input element over the windows that cover it, in order.</summary>
    public void AvgPool2dBackward(ArrayView<float> dx, ArrayView<float> dy, in Pool2dGeometry g)
    {
        var a = PoolArgs.Of(g);
        long n = (long)a.Planes * a.Oh * a.Ow, inputs = (long)a.Planes * a.H * a.W;
        Need(dy, n, nameof(dy)); Need(dx, inputs, nameof(dx));
        _avgPoolBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>(AvgPoolBackwardKernel);
        Launched(); _avgPoolBackward(checked((int)inputs), dx, dy, a);
    }

    private static void AvgPoolKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, PoolArgs a)
    {
        int j = index % a.Ow, i = index / a.Ow % a.Oh;
        long plane = index / (a.Ow * a.Oh) * (long)a.H * a.W;
        int h0 = i * a.Sh - a.Ph, w0 = j * a.Sw - a.Pw;
        int count = (XMath.Min(h0 + a.Kh, a.H + a.Ph) - h0) * (XMath.Min(w0 + a.Kw, a.W + a.Pw) - w0);
        float s = 0f;
        for (int hi = XMath.Max(h0, 0); hi < XMath.Min(h0 + a.Kh, a.H); hi++)
            for (int wj = XMath.Max(w0, 0); wj < XMath.Min(w0 + a.Kw, a.W); wj++) s += x[plane + hi * a.W + wj];
        y[index] = s / count;
    }

    private static void AvgPoolBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, PoolArgs a)
    {
        long plane = Windows(index, a, out int at, out int i0, out int i1, out int j0, out int j1);
        float s = 0f;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++)
            {
                int h0 = i * a.Sh - a.Ph, w0 = j * a.Sw - a.Pw;
                int count = (XMath.Min(h0 + a.Kh, a.H + a.Ph) - h0) * (XMath.Min(w0 + a.Kw, a.W + a.Pw) - w0);
                s += dy[plane + i * a.Ow + j] / count;
            }
        dx[index] += s;
    }
}
