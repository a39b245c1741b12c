using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// Direct 3×3 stride-1 convolution for layers with few input channels (an image's first layer: 1 or 3 channels). As
// im2col + GEMM its depth is only 9·C, so the GEMM runs far from peak (conv1 at 47 % of it) and im2col copies the
// image nine times; here each output row is 16 columns per vector, every input vector loaded once feeds four output
// channels' FMAs, and the weight gradient sums dy·x products straight into nine vector accumulators per channel pair.
// Inputs are staged one sample at a time in zero-padded planes (pad on every side, 16 floats of slack on the right), so
// the loads need no bounds checks. The input gradient of such layers (rarely needed: it is usually the first) stays on
// im2col.
public static unsafe partial class Conv2dKernels
{
    private const int DirectMaxChannels = 4;

    /// <summary>True when this convolution's forward and weight gradient run as the direct small-channel kernel.</summary>
    internal static bool UsesDirect(in Conv2dGeometry g) =>
        Gemm.UsesAvx512 && g.KernelH == 3 && g.KernelW == 3 && g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1
        && g.DilationW == 1 && (uint)g.PadH <= 2 && (uint)g.PadW <= 2 && g.InChannels <= DirectMaxChannels
        && g.OutHeight >= 1 && g.OutWidth >= 1 && !UsesWinograd(g);

    // Padded plane of one input channel: (H + 2·padH) rows of PaddedWidth floats.
    private static int PaddedWidth(in Conv2dGeometry g) => (g.OutWidth + 15) / 16 * 16 + 16;
    private static long PaddedSample(in Conv2dGeometry g) => (long)g.InChannels * (g.InHeight + 2 * g.PadH) * PaddedWidth(g);

    /// <summary>Scratch per core: one padded sample and a private weight gradient.</summary>
    private static long DirectPerCore(in Conv2dGeometry g) => PaddedSample(g) + g.WeightSize;

    private static long DirectScratch(in Conv2dGeometry g) =>
        g.KernelH == 3 && g.KernelW == 3 && g.InChannels <= DirectMaxChannels && g.OutHeight >= 1 && g.OutWidth >= 1 ? 2 * DirectPerCore(g) : 0;

    /// <summary>Copies sample x [C, H, W] into zero-padded planes.</summary>
    private static void PadSample(float* dst, float* x, in Conv2dGeometry g)
    {
        int pw = PaddedWidth(g), ph = g.InHeight + 2 * g.PadH;
        new Span<float>(dst, (int)PaddedSample(g)).Clear();
        for (int c = 0; c < g.InChannels; c++)
            for (int r = 0; r < g.InHeight; r++)
                new ReadOnlySpan<float>(x + ((long)c * g.InHeight + r) * g.InWidth, g.InWidth)
                    .CopyTo(new Span<float>(dst + ((long)c * ph + r + g.PadH) * pw + g.PadW, g.InWidth));
    }

    /// <summary>The weights [c·9 + k] of output channels o0 … o0 + 3; channels past the n that exist read channel o0's
    /// (their results are not stored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupWeights(float* w, int o0, int n, int ci, out float* w0, out float* w1, out float* w2, out float* w3)
    {
        w0 = w + (long)o0 * ci * 9;
        w1 = w + (long)(o0 + Math.Min(1, n - 1)) * ci * 9;
        w2 = w + (long)(o0 + Math.Min(2, n - 1)) * ci * 9;
        w3 = w + (long)(o0 + Math.Min(3, n - 1)) * ci * 9;
    }

    private static void DirectForward(float* y, float* x, float* w, float* bias, in Conv2dGeometry g, float* scratch)
    {
        var a = new Args { Y = y, X = x, W = w, Bias = bias, Scratch = scratch, G = g };
        // One sample stays on this core: sharing its output channels between the cores costs more in waking the
        // worker than it saves for an unpooled convolution this small.
        if (g.Batch > 1) HelperThread.ForBlocks(&DirectForwardBlock, &a, g.Batch, 1);
        else DirectForwardRange(ref a, 0, 1, scratch);
    }

    // Samples to whichever core is free, each core padding into its own buffer.
    private static void DirectForwardBlock(void* state, int half, int b0, int b1)
    {
        ref var a = ref *(Args*)state;
        DirectForwardRange(ref a, b0, b1, a.Scratch + half * DirectPerCore(a.G));
    }

    private static void DirectForwardRange(ref Args a, int b0, int b1, float* pad)
    {
        var g = a.G;
        int oh = g.OutHeight, ow = g.OutWidth, pw = PaddedWidth(g), ph = g.InHeight + 2 * g.PadH, ci = g.InChannels, o = g.OutChannels;
        int vectors = (ow + 15) / 16;
        var tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(ow - (vectors - 1) * 16)).AsSingle();
        for (int b = b0; b < b1; b++)
        {
            PadSample(pad, a.X + (long)b * g.InSize, g);
            float* yb = a.Y + (long)b * g.OutSize;
            for (int o0 = 0; o0 < o; o0 += 4)
            {
                int n = Math.Min(4, o - o0);
                GroupWeights(a.W, o0, n, ci, out var w0, out var w1, out var w2, out var w3);
                var bias0 = Vector512.Create(a.Bias == null ? 0f : a.Bias[o0]);
                var bias1 = Vector512.Create(a.Bias == null || n < 2 ? 0f : a.Bias[o0 + 1]);
                var bias2 = Vector512.Create(a.Bias == null || n < 3 ? 0f : a.Bias[o0 + 2]);
                var bias3 = Vector512.Create(a.Bias == null || n < 4 ? 0f : a.Bias[o0 + 3]);
                for (int i = 0; i < oh; i++)
                    for (int v = 0; v < vectors; v++)
                    {
                        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
                        for (int c = 0; c < ci; c++)
                        {
                            float* row = pad + ((long)c * ph + i) * pw + v * 16;
                            int wc = c * 9;
                            for (int kh = 0; kh < 3; kh++, row += pw)
                                for (int kw = 0; kw < 3; kw++)
                                {
                                    var xv = Vector512.Load(row + kw);
                                    int k = wc + kh * 3 + kw;
                                    s0 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[k]), xv, s0);
                                    s1 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[k]), xv, s1);
                                    s2 = Vector512.FusedMultiplyAdd(Vector512.Create(w2[k]), xv, s2);
                                    s3 = Vector512.FusedMultiplyAdd(Vector512.Create(w3[k]), xv, s3);
                                }
                        }
                        // The bias last, as libtorch and the GEMM path add it: started from the bias, the small products
                        // lost low bits against it, and that rounding bias sent a 10-step AdamW run 10× further from
                        // libtorch's than float noise does.
                        s0 += bias0; s1 += bias1; s2 += bias2; s3 += bias3;
                        float* dst = yb + ((long)o0 * oh + i) * ow + v * 16;
                        long plane = (long)oh * ow;
                        StoreRow(dst, s0, v == vectors - 1, tail);
                        if (n > 1) StoreRow(dst + plane, s1, v == vectors - 1, tail);
                        if (n > 2) StoreRow(dst + 2 * plane, s2, v == vectors - 1, tail);
                        if (n > 3) StoreRow(dst + 3 * plane, s3, v == vectors - 1, tail);
                    }
            }
        }
    }

    /// <summary>
    /// The direct convolution with a 2×2, stride-2 max-pool (then ReLU) applied to each pair of output rows as they are
    /// computed (even output sizes): the convolution's output is never written. Bit for bit the two kernels.
    /// </summary>
    private static void DirectForwardPooled(float* pooled, int* argmax, bool relu, float* x, float* w, float* bias, in Conv2dGeometry g, float* scratch)
    {
        var a = new Args { Y = pooled, X = x, W = w, Bias = bias, Scratch = scratch, G = g };
        var p = new PooledArgs { Conv = a, Arg = argmax, Relu = relu };
        if (g.Batch > 1) HelperThread.ForBlocks(&DirectPooledBlock, &p, g.Batch, 1);
        else if ((long)g.InChannels * g.OutChannels * g.OutHeight * g.OutWidth >= SplitSingleMacs) HelperThread.Run(&DirectPooledChannelHalf, &p);
        else DirectPooledRange(ref p, 0, 1, scratch, 0, g.OutChannels);
    }

    // A single image of at least this many multiply-adds is split between the cores by output channels (a multiple of
    // four each, each core padding the sample into its own buffer): below it, waking the worker costs more than it saves.
    private const long SplitSingleMacs = 1 << 15;

    private static void DirectPooledChannelHalf(void* state, int half)
    {
        ref var p = ref *(PooledArgs*)state;
        int o = p.Conv.G.OutChannels, mid = Math.Min((o / 4 + 1) / 2 * 4, o);
        if (half == 0) DirectPooledRange(ref p, 0, 1, p.Conv.Scratch, 0, mid);
        else DirectPooledRange(ref p, 0, 1, p.Conv.Scratch + DirectPerCore(p.Conv.G), mid, o);
    }

    private struct PooledArgs { public Args Conv; public int* Arg; public bool Relu; }

    private static void DirectPooledBlock(void* state, int half, int b0, int b1)
    {
        ref var p = ref *(PooledArgs*)state;
        DirectPooledRange(ref p, b0, b1, p.Conv.Scratch + half * DirectPerCore(p.Conv.G), 0, p.Conv.G.OutChannels);
    }

    private static void DirectPooledRange(ref PooledArgs p, int b0, int b1, float* pad, int oFrom, int oTo)
    {
        ref var a = ref p.Conv;
        var g = a.G;
        int oh = g.OutHeight, ow = g.OutWidth, pw = PaddedWidth(g), ph = g.InHeight + 2 * g.PadH, ci = g.InChannels, o = g.OutChannels;
        int poh = oh / 2, pow = ow / 2, vectors = (ow + 15) / 16;
        long pplane = (long)poh * pow;
        var even = PoolingKernels.EvenLanes; var odd = PoolingKernels.OddLanes;   // read once, outside the loops
        for (int b = b0; b < b1; b++)
        {
            PadSample(pad, a.X + (long)b * g.InSize, g);
            float* yb = a.Y + (long)b * o * pplane;
            int* ab = p.Arg == null ? null : p.Arg + (long)b * o * pplane;
            for (int o0 = oFrom; o0 < oTo; o0 += 4)
            {
                int n = Math.Min(4, oTo - o0);
                // Four output channels at a time, as the unpooled kernel: every input vector loaded feeds four FMAs.
                GroupWeights(a.W, o0, n, ci, out var w0, out var w1, out var w2, out var w3);
                for (int i = 0; i < poh; i++)
                    // 32 output columns (16 windows) of rows 2i and 2i + 1 at a time; columns past the row are never stored.
                    for (int v = 0; v < vectors; v += 2)
                    {
                        // t: row 2i, u: row 2i + 1; first digit the channel, second the 16-column half.
                        Vector512<float> t00 = default, t01 = default, u00 = default, u01 = default, t10 = default, t11 = default, u10 = default, u11 = default;
                        Vector512<float> t20 = default, t21 = default, u20 = default, u21 = default, t30 = default, t31 = default, u30 = default, u31 = default;
                        bool two = v + 1 < vectors;
                        for (int c = 0; c < ci; c++)
                        {
                            float* row = pad + ((long)c * ph + 2 * i) * pw + v * 16;
                            int wc = c * 9;
                            for (int kh = 0; kh < 3; kh++, row += pw)
                                for (int kw = 0; kw < 3; kw++)
                                {
                                    int k = wc + kh * 3 + kw;
                                    var c0 = Vector512.Create(w0[k]); var c1 = Vector512.Create(w1[k]);
                                    var c2 = Vector512.Create(w2[k]); var c3 = Vector512.Create(w3[k]);
                                    // Output row 2i reads padded row 2i + kh; row 2i + 1 the next one.
                                    var x0 = Vector512.Load(row + kw); var y0 = Vector512.Load(row + pw + kw);
                                    t00 = Vector512.FusedMultiplyAdd(c0, x0, t00); u00 = Vector512.FusedMultiplyAdd(c0, y0, u00);
                                    t10 = Vector512.FusedMultiplyAdd(c1, x0, t10); u10 = Vector512.FusedMultiplyAdd(c1, y0, u10);
                                    t20 = Vector512.FusedMultiplyAdd(c2, x0, t20); u20 = Vector512.FusedMultiplyAdd(c2, y0, u20);
                                    t30 = Vector512.FusedMultiplyAdd(c3, x0, t30); u30 = Vector512.FusedMultiplyAdd(c3, y0, u30);
                                    if (!two) continue;
                                    var x1 = Vector512.Load(row + 16 + kw); var y1 = Vector512.Load(row + pw + 16 + kw);
                                    t01 = Vector512.FusedMultiplyAdd(c0, x1, t01); u01 = Vector512.FusedMultiplyAdd(c0, y1, u01);
                                    t11 = Vector512.FusedMultiplyAdd(c1, x1, t11); u11 = Vector512.FusedMultiplyAdd(c1, y1, u11);
                                    t21 = Vector512.FusedMultiplyAdd(c2, x1, t21); u21 = Vector512.FusedMultiplyAdd(c2, y1, u21);
                                    t31 = Vector512.FusedMultiplyAdd(c3, x1, t31); u31 = Vector512.FusedMultiplyAdd(c3, y1, u31);
                                }
                        }
                        int j0 = v * 8, count = Math.Min(16, pow - j0);
                        Pool(ref p, yb, ab, o0, t00, t01, u00, u01, i, j0, count, ow, pow, pplane, even, odd);
                        if (n > 1) Pool(ref p, yb, ab, o0 + 1, t10, t11, u10, u11, i, j0, count, ow, pow, pplane, even, odd);
                        if (n > 2) Pool(ref p, yb, ab, o0 + 2, t20, t21, u20, u21, i, j0, count, ow, pow, pplane, even, odd);
                        if (n > 3) Pool(ref p, yb, ab, o0 + 3, t30, t31, u30, u31, i, j0, count, ow, pow, pplane, even, odd);
                    }
            }
        }

        // The bias last and before the comparison, as in the two-kernel chain; then max, ReLU, argmax in the conv plane.
        // Inlined: a call here makes the JIT keep the sixteen accumulators on the stack through the loop above (all
        // vector registers are caller-saved), which ran 4× slower without tiered PGO.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Pool(ref PooledArgs p, float* yb, int* ab, int oc, Vector512<float> t0, Vector512<float> t1, Vector512<float> u0, Vector512<float> u1,
            int i, int j0, int count, int ow, int pow, long pplane, Vector512<int> even, Vector512<int> odd)
        {
            var bias = Vector512.Create(p.Conv.Bias == null ? 0f : p.Conv.Bias[oc]);
            var max = PoolingKernels.Max2x2Rows(t0 + bias, t1 + bias, u0 + bias, u1 + bias, ow, even, odd, out var k);
            if (p.Relu) max = Elementwise.Relu(max);
            var lanes = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count));
            long at = (long)oc * pplane + (long)i * pow + j0;
            Avx512F.MaskStore(yb + at, lanes.AsSingle(), max);
            if (ab != null)
                Avx512F.MaskStore(ab + at, lanes, k + Vector512<int>.Indices * Vector512.Create(2) + Vector512.Create(2 * i * ow + 2 * j0));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* dst, Vector512<float> v, bool last, Vector512<float> tail)
    {
        if (last) Avx512F.MaskStore(dst, tail, v);
        else Vector512.Store(v, dst);
    }

    /// <summary>dw += Σ over the batch of dy[o]·x[c] shifted by (kh, kw), both cores on half of the samples each.</summary>
    private static void DirectWeightGradient(float* dw, float* dy, float* x, in Conv2dGeometry g, float* scratch)
    {
        var a = new Args { Dw = dw, Dy = dy, X = x, Scratch = scratch, G = g };
        if (g.Batch > 1)
        {
            HelperThread.Run(&DirectDwHalf, &a);
            Elementwise.AddInPlace(new Span<float>(dw, g.WeightSize), new ReadOnlySpan<float>(scratch + DirectPerCore(g) + PaddedSample(g), g.WeightSize));
        }
        else DirectDwRange(ref a, 0, 1, scratch, dw);
    }

    private static void DirectDwHalf(void* state, int half)
    {
        ref var a = ref *(Args*)state;
        int mid = a.G.Batch / 2;
        if (half == 0) { DirectDwRange(ref a, 0, mid, a.Scratch, a.Dw); return; }
        float* buffers = a.Scratch + DirectPerCore(a.G), privateDw = buffers + PaddedSample(a.G);
        new Span<float>(privateDw, a.G.WeightSize).Clear();
        DirectDwRange(ref a, mid, a.G.Batch, buffers, privateDw);
    }

    private static void DirectDwRange(ref Args a, int b0, int b1, float* pad, float* dw)
    {
        var g = a.G;
        int oh = g.OutHeight, ow = g.OutWidth, pw = PaddedWidth(g), ph = g.InHeight + 2 * g.PadH, ci = g.InChannels, o = g.OutChannels;
        int vectors = (ow + 15) / 16;
        var tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(ow - (vectors - 1) * 16)).AsSingle();
        for (int b = b0; b < b1; b++)
        {
            PadSample(pad, a.X + (long)b * g.InSize, g);
            float* dyb = a.Dy + (long)b * g.OutSize;
            // Two output channels at a time: 18 register accumulators (9 taps each), each input load feeding two FMAs.
            for (int o0 = 0; o0 < o; o0 += 2)
            {
                bool two = o0 + 1 < o;
                float* dy0 = dyb + (long)o0 * oh * ow, dy1 = two ? dy0 + (long)oh * ow : dy0;
                for (int c = 0; c < ci; c++)
                {
                    var z = Vector512<float>.Zero;
                    Vector512<float> p0 = z, p1 = z, p2 = z, p3 = z, p4 = z, p5 = z, p6 = z, p7 = z, p8 = z;
                    Vector512<float> q0 = z, q1 = z, q2 = z, q3 = z, q4 = z, q5 = z, q6 = z, q7 = z, q8 = z;
                    for (int i = 0; i < oh; i++)
                        for (int v = 0; v < vectors; v++)
                        {
                            // Lanes past the row's end load as zero from dy, so the padded planes' slack adds nothing.
                            long at = (long)i * ow + v * 16;
                            bool last = v == vectors - 1;
                            var d0 = last ? Avx512F.MaskLoad(dy0 + at, tail, z) : Vector512.Load(dy0 + at);
                            var d1 = last ? Avx512F.MaskLoad(dy1 + at, tail, z) : Vector512.Load(dy1 + at);
                            float* r0 = pad + ((long)c * ph + i) * pw + v * 16, r1 = r0 + pw, r2 = r1 + pw;
                            var x = Vector512.Load(r0); p0 = Vector512.FusedMultiplyAdd(d0, x, p0); q0 = Vector512.FusedMultiplyAdd(d1, x, q0);
                            x = Vector512.Load(r0 + 1); p1 = Vector512.FusedMultiplyAdd(d0, x, p1); q1 = Vector512.FusedMultiplyAdd(d1, x, q1);
                            x = Vector512.Load(r0 + 2); p2 = Vector512.FusedMultiplyAdd(d0, x, p2); q2 = Vector512.FusedMultiplyAdd(d1, x, q2);
                            x = Vector512.Load(r1); p3 = Vector512.FusedMultiplyAdd(d0, x, p3); q3 = Vector512.FusedMultiplyAdd(d1, x, q3);
                            x = Vector512.Load(r1 + 1); p4 = Vector512.FusedMultiplyAdd(d0, x, p4); q4 = Vector512.FusedMultiplyAdd(d1, x, q4);
                            x = Vector512.Load(r1 + 2); p5 = Vector512.FusedMultiplyAdd(d0, x, p5); q5 = Vector512.FusedMultiplyAdd(d1, x, q5);
                            x = Vector512.Load(r2); p6 = Vector512.FusedMultiplyAdd(d0, x, p6); q6 = Vector512.FusedMultiplyAdd(d1, x, q6);
                            x = Vector512.Load(r2 + 1); p7 = Vector512.FusedMultiplyAdd(d0, x, p7); q7 = Vector512.FusedMultiplyAdd(d1, x, q7);
                            x = Vector512.Load(r2 + 2); p8 = Vector512.FusedMultiplyAdd(d0, x, p8); q8 = Vector512.FusedMultiplyAdd(d1, x, q8);
                        }
                    float* w0 = dw + ((long)o0 * ci + c) * 9;
                    w0[0] += Vector512.Sum(p0); w0[1] += Vector512.Sum(p1); w0[2] += Vector512.Sum(p2);
                    w0[3] += Vector512.Sum(p3); w0[4] += Vector512.Sum(p4); w0[5] += Vector512.Sum(p5);
                    w0[6] += Vector512.Sum(p6); w0[7] += Vector512.Sum(p7); w0[8] += Vector512.Sum(p8);
                    if (!two) continue;
                    float* w1 = dw + ((long)(o0 + 1) * ci + c) * 9;
                    w1[0] += Vector512.Sum(q0); w1[1] += Vector512.Sum(q1); w1[2] += Vector512.Sum(q2);
                    w1[3] += Vector512.Sum(q3); w1[4] += Vector512.Sum(q4); w1[5] += Vector512.Sum(q5);
                    w1[6] += Vector512.Sum(q6); w1[7] += Vector512.Sum(q7); w1[8] += Vector512.Sum(q8);
                }
            }
        }
    }
}
