using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// Depthwise convolution (groups = C, one input channel per group, m = O/C outputs each): a GEMM per (sample, group)
// would multiply a [m, K·K] weight by a [K·K, H·W] patch matrix, far too thin to pay for the packing, so each output
// plane is computed directly from a zero-padded copy of its input plane: per output row, one vector FMA per tap over
// 16 columns (stride 1), or a scalar loop (other strides). Forward and both gradients side by side; each of the two
// cores takes half of the channels (so no two write one weight's gradient), every sample in order: deterministic.
public static unsafe partial class Conv2dKernels
{
    /// <summary>Floats of one zero-padded input plane.</summary>
    private static int PaddedPlane(in Conv2dGeometry g) => (g.InHeight + 2 * g.PadH) * (g.InWidth + 2 * g.PadW);

    /// <summary>Scratch of the depthwise path: per core, a padded input plane and a padded output-gradient (or input-gradient) plane.</summary>
    private static long DepthwiseScratchSize(in Conv2dGeometry group) => 2L * (PaddedPlane(group) + Math.Max(PaddedPlane(group), PaddedPlane(TransposedGeometry(group))));

    /// <summary>
    /// At stride 1 the input gradient is itself a convolution: dy padded by d(k−1) − p on each side, correlated with the
    /// kernel turned by 180°, gives dx (a gather, like forward, instead of a scatter whose overlapping stores stall).
    /// </summary>
    private static Conv2dGeometry TransposedGeometry(in Conv2dGeometry g) => g with
    {
        InHeight = g.OutHeight, InWidth = g.OutWidth,
        PadH = g.DilationH * (g.KernelH - 1) - g.PadH, PadW = g.DilationW * (g.KernelW - 1) - g.PadW,
    };

    /// <summary>The input gradient can be computed as that convolution.</summary>
    private static bool GathersInputGradient(in Conv2dGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && TransposedGeometry(g) is { PadH: >= 0, PadW: >= 0 };

    /// <summary>The grouped convolution is depthwise (one input channel per group) and takes the direct path.</summary>
    private static bool IsDepthwise(in Conv2dGeometry group, int groups) => groups > 1 && group.InChannels == 1;

    private struct DepthwiseArgs
    {
        public float* Y, X, W, Bias, Dx, Dw, Dy, Scratch;
        public Conv2dGeometry G; // one group, the whole batch
        public int Groups;
        public bool AccumulateDx;
    }

    private static void DepthwiseForward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, in Conv2dGeometry group, int groups, Span<float> scratch)
    {
        CheckDepthwiseScratch(group, scratch.Length);
        fixed (float* py = y) fixed (float* px = x) fixed (float* pw = w) fixed (float* pb = bias) fixed (float* ps = scratch)
        {
            var a = new DepthwiseArgs { Y = py, X = px, W = pw, Bias = bias.IsEmpty ? null : pb, Scratch = ps, G = group, Groups = groups };
            Halves(&DepthwiseForwardHalf, &a);
        }
    }

    private static void DepthwiseBackward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry group, int groups, Span<float> scratch, bool accumulateDx)
    {
        CheckDepthwiseScratch(group, scratch.Length);
        fixed (float* pdx = dx) fixed (float* pdw = dw) fixed (float* pdy = dy) fixed (float* px = x) fixed (float* pw = w) fixed (float* ps = scratch)
        {
            var a = new DepthwiseArgs
            {
                Dx = dx.IsEmpty ? null : pdx, Dw = dw.IsEmpty ? null : pdw, Dy = pdy, X = px, W = pw, Scratch = ps,
                G = group, Groups = groups, AccumulateDx = accumulateDx,
            };
            Halves(&DepthwiseBackwardHalf, &a);
        }
    }

    /// <summary>Both cores when there is enough work to pay for waking the second (a few hundred thousand taps).</summary>
    private static void Halves(delegate*<void*, int, void> half, DepthwiseArgs* a)
    {
        var g = a->G;
        long taps = (long)g.Batch * a->Groups * g.OutChannels * g.OutHeight * g.OutWidth * g.KernelH * g.KernelW;
        if (a->Groups > 1 && taps >= 1 << 18) HelperThread.Run(half, a);
        else { half(a, 0); half(a, 1); }
    }

    /// <summary>The channels of one half: [0, C/2) or [C/2, C).</summary>
    private static (int From, int To) ChannelHalf(int groups, int half) => half == 0 ? (0, groups / 2) : (groups / 2, groups);

    private static void DepthwiseForwardHalf(void* state, int half)
    {
        ref var a = ref *(DepthwiseArgs*)state;
        var g = a.G;
        var (c0, c1) = ChannelHalf(a.Groups, half);
        float* pad = a.Scratch + (long)half * 2 * PaddedPlane(g);
        int m = g.OutChannels, plane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth, taps = g.KernelH * g.KernelW;
        for (int b = 0; b < g.Batch; b++)
            for (int c = c0; c < c1; c++)
            {
                PadPlane(pad, a.X + ((long)b * a.Groups + c) * plane, g);
                for (int j = 0; j < m; j++)
                {
                    int o = c * m + j;
                    float* y = a.Y + ((long)b * a.Groups * m + o) * outPlane;
                    PlaneForward(y, pad, a.W + (long)o * taps, a.Bias == null ? 0f : a.Bias[o], g);
                }
            }
    }

    private static void DepthwiseBackwardHalf(void* state, int half)
    {
        ref var a = ref *(DepthwiseArgs*)state;
        var g = a.G;
        var (c0, c1) = ChannelHalf(a.Groups, half);
        var t = TransposedGeometry(g);
        bool gather = GathersInputGradient(g);
        int padded = PaddedPlane(g), second = Math.Max(padded, PaddedPlane(t));
        float* pad = a.Scratch + (long)half * (padded + second), padDy = pad + padded;
        int m = g.OutChannels, plane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth, taps = g.KernelH * g.KernelW;
        float* turned = stackalloc float[taps];
        for (int b = 0; b < g.Batch; b++)
            for (int c = c0; c < c1; c++)
            {
                float* x = a.X + ((long)b * a.Groups + c) * plane, dx = a.Dx + ((long)b * a.Groups + c) * plane;
                if (a.Dw != null) PadPlane(pad, x, g);
                if (a.Dx != null && !gather) new Span<float>(padDy, padded).Clear(); // the scattered input gradient, padded
                for (int j = 0; j < m; j++)
                {
                    int o = c * m + j;
                    float* dy = a.Dy + ((long)b * a.Groups * m + o) * outPlane, w = a.W + (long)o * taps;
                    if (a.Dw != null) PlaneWeightGradient(a.Dw + (long)o * taps, dy, pad, g);
                    if (a.Dx == null) continue;
                    if (gather)
                    {
                        for (int k = 0; k < taps; k++) turned[k] = w[taps - 1 - k];
                        PadPlane(padDy, dy, t);
                        PlaneForward(dx, padDy, turned, 0f, t, accumulate: a.AccumulateDx || j > 0);
                    }
                    else PlaneInputGradient(padDy, dy, w, g);
                }
                if (a.Dx != null && !gather) UnpadPlane(dx, padDy, g, a.AccumulateDx);
            }
    }

    /// <summary>The input plane inside a zero border of PadH rows and PadW columns.</summary>
    private static void PadPlane(float* pad, float* x, in Conv2dGeometry g)
    {
        int pw = g.InWidth + 2 * g.PadW;
        if (g.PadH == 0 && g.PadW == 0) { new ReadOnlySpan<float>(x, g.InHeight * g.InWidth).CopyTo(new Span<float>(pad, g.InHeight * g.InWidth)); return; }
        new Span<float>(pad, PaddedPlane(g)).Clear();
        for (int i = 0; i < g.InHeight; i++)
            new ReadOnlySpan<float>(x + (long)i * g.InWidth, g.InWidth).CopyTo(new Span<float>(pad + (long)(i + g.PadH) * pw + g.PadW, g.InWidth));
    }

    /// <summary>dx (+)= the interior of the padded gradient plane (what fell on the border belongs to no input).</summary>
    private static void UnpadPlane(float* dx, float* padDx, in Conv2dGeometry g, bool accumulate)
    {
        int pw = g.InWidth + 2 * g.PadW;
        for (int i = 0; i < g.InHeight; i++)
        {
            var src = new ReadOnlySpan<float>(padDx + (long)(i + g.PadH) * pw + g.PadW, g.InWidth);
            var dst = new Span<float>(dx + (long)i * g.InWidth, g.InWidth);
            if (accumulate) Elementwise.AddInPlace(dst, src); else src.CopyTo(dst);
        }
    }

    /// <summary>y[oh, ow] (+)= bias + Σ_(kh,kw) w[kh, kw] · pad[oh·sh + kh·dh, ow·sw + kw·dw].</summary>
    private static void PlaneForward(float* y, float* pad, float* w, float bias, in Conv2dGeometry g, bool accumulate = false)
    {
        int oh = g.OutHeight, ow = g.OutWidth, pw = g.InWidth + 2 * g.PadW, kh = g.KernelH, kw = g.KernelW;
        for (int i = 0; i < oh; i++)
        {
            float* row = y + (long)i * ow;
            float* top = pad + (long)i * g.StrideH * pw;
            if (g.StrideW == 1 && System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            {
                for (int j = 0; j < ow; j += 16)
                {
                    int n = Math.Min(16, ow - j);
                    var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n)).AsSingle();
                    var acc = accumulate ? LoadMasked(row + j, mask, n) + Vector512.Create(bias) : Vector512.Create(bias);
                    for (int r = 0; r < kh; r++)
                    {
                        float* src = top + (long)r * g.DilationH * pw + j;
                        for (int s = 0; s < kw; s++)
                            acc = RowOps.MultiplyAdd(Vector512.Create(w[r * kw + s]), LoadMasked(src + s * g.DilationW, mask, n), acc);
                    }
                    StoreMasked(row + j, acc, mask, n);
                }
                continue;
            }
            for (int j = 0; j < ow; j++)
            {
                float sum = accumulate ? row[j] + bias : bias;
                for (int r = 0; r < kh; r++)
                {
                    float* src = top + (long)r * g.DilationH * pw + (long)j * g.StrideW;
                    for (int s = 0; s < kw; s++) sum += w[r * kw + s] * src[s * g.DilationW];
                }
                row[j] = sum;
            }
        }
    }

    /// <summary>dw[kh, kw] += Σ_(oh,ow) dy[oh, ow] · pad[oh·sh + kh·dh, ow·sw + kw·dw]: at stride 1 one vector
    /// accumulator per tap over the whole plane (each dy load feeds every tap), summed across lanes once.</summary>
    private static void PlaneWeightGradient(float* dw, float* dy, float* pad, in Conv2dGeometry g)
    {
        int oh = g.OutHeight, ow = g.OutWidth, pw = g.InWidth + 2 * g.PadW, kh = g.KernelH, kw = g.KernelW, taps = kh * kw;
        if (g.StrideW == 1 && System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            var acc = stackalloc Vector512<float>[taps];
            for (int t = 0; t < taps; t++) acc[t] = Vector512<float>.Zero;
            for (int i = 0; i < oh; i++)
            {
                float* top = pad + (long)i * g.StrideH * pw;
                for (int j = 0; j < ow; j += 16)
                {
                    int n = Math.Min(16, ow - j);
                    var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n)).AsSingle();
                    var d = LoadMasked(dy + (long)i * ow + j, mask, n);
                    for (int r = 0; r < kh; r++)
                    {
                        float* src = top + (long)r * g.DilationH * pw + j;
                        for (int s = 0; s < kw; s++)
                            acc[r * kw + s] = RowOps.MultiplyAdd(d, LoadMasked(src + s * g.DilationW, mask, n), acc[r * kw + s]);
                    }
                }
            }
            for (int t = 0; t < taps; t++) dw[t] += Vector512.Sum(acc[t]);
            return;
        }
        for (int r = 0; r < kh; r++)
            for (int s = 0; s < kw; s++)
            {
                float sum = 0;
                for (int i = 0; i < oh; i++)
                {
                    float* src = pad + ((long)i * g.StrideH + (long)r * g.DilationH) * pw + s * g.DilationW;
                    for (int j = 0; j < ow; j++) sum += dy[(long)i * ow + j] * src[(long)j * g.StrideW];
                }
                dw[r * kw + s] += sum;
            }
    }

    /// <summary>padDx[oh·sh + kh·dh, ow·sw + kw·dw] += w[kh, kw] · dy[oh, ow] (the forward's taps, scattered back),
    /// where the gather of <see cref="TransposedGeometry"/> does not apply (strides above 1).</summary>
    private static void PlaneInputGradient(float* padDx, float* dy, float* w, in Conv2dGeometry g)
    {
        int oh = g.OutHeight, ow = g.OutWidth, pw = g.InWidth + 2 * g.PadW, kh = g.KernelH, kw = g.KernelW;
        for (int i = 0; i < oh; i++)
        {
            float* grad = dy + (long)i * ow;
            float* top = padDx + (long)i * g.StrideH * pw;
            for (int j = 0; j < ow; j++)
            {
                float d = grad[j];
                for (int r = 0; r < kh; r++)
                {
                    float* dst = top + (long)r * g.DilationH * pw + (long)j * g.StrideW;
                    for (int s = 0; s < kw; s++) dst[s * g.DilationW] += w[r * kw + s] * d;
                }
            }
        }
    }

    /// <summary>Up to 16 floats; lanes past <paramref name="n"/> read as 0 and never touch memory past the row.</summary>
    private static Vector512<float> LoadMasked(float* p, Vector512<float> mask, int n) =>
        n == 16 ? Vector512.Load(p) : System.Runtime.Intrinsics.X86.Avx512F.MaskLoad(p, mask, Vector512<float>.Zero);

    private static void StoreMasked(float* p, Vector512<float> v, Vector512<float> mask, int n)
    {
        if (n == 16) Vector512.Store(v, p);
        else System.Runtime.Intrinsics.X86.Avx512F.MaskStore(p, mask, v);
    }

    private static void CheckDepthwiseScratch(in Conv2dGeometry group, int scratch)
    {
        if (scratch < DepthwiseScratchSize(group))
            throw new ArgumentException($"Conv2d (depthwise): scratch has {scratch} floats, {DepthwiseScratchSize(group)} needed for {group}.");
    }
}
