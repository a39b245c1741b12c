using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2015): each 2×2 output tile is Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A over a 4×4 input tile d, so the 9 multiplies
// per output pixel and channel pair become 4 (16 per 4 pixels). With ξ = one of the 16 positions of the 4×4
// transformed tile, the channel sums are 16 independent GEMMs M[ξ] = U[ξ]·V[ξ] ([Co×Ci]·[Ci×tiles]), which run on the
// GEMM's own 6×64 micro-kernel over 64-tile chunks that stay in cache: the transformed input of a chunk is written in the
// micro-kernel's B-panel layout and the transformed weights once per call in its A-panel layout, so nothing is packed.
// The input gradient of a 3×3 stride-1 convolution is itself one (of dy, with the weights flipped and transposed, and
// padding 2 − p), so the same routine serves forward and backward-to-input; the weight gradient runs the adjoints of
// the transforms (see WinogradWeightGradient). Numerically F(2×2, 3×3) is benign (transform constants 0, ±1, ½): the
// tests hold it to the same 1e-4 relative tolerance as the direct loops.
public static unsafe partial class Conv2dKernels
{
    private const int WTiles = GemmMicroKernel.NR;      // tiles per chunk: one micro-kernel panel wide
    private const int WBlock = 4 * GemmMicroKernel.MR;  // output channels whose 16 products are kept at once
    private const int VStride = WTiles + 16;            // a V row and 16 floats of slack for whole-vector stores
    private const int MStride = WBlock * WTiles + 16;   // one ξ's block of products, a cache line apart from the next
    private const int WMaxChannels = 512;               // bounds a chunk's buffers (V is 16·Ci·80 floats)

    /// <summary>A convolution as Winograd sees it: forward, or the input gradient as a convolution of dy.</summary>
    private struct WinoView
    {
        public float* In, Out, U, Bias;
        public int Batch, Ci, Co, H, W, OH, OW, PadH, PadW;
        public bool Accumulate;
        // A fused 2×2 max-pool (forward only): the pooled output [B, Co, OH/2, OW/2] replaces Out, argmax optional.
        public float* PoolOut;
        public int* PoolArg;
        public bool PoolRelu;
        public int TilesH => (OH + 1) / 2;
        public int TilesW => (OW + 1) / 2;
        public long Tiles => (long)Batch * TilesH * TilesW;
        public int Chunks => (int)((Tiles + WTiles - 1) / WTiles);
        public int Panels => WeightPanels(Co);
    }

    /// <summary>6-row A panels holding co output channels' transformed weights.</summary>
    private static int WeightPanels(int co) => (co + GemmMicroKernel.MR - 1) / GemmMicroKernel.MR;

    /// <summary>Floats of transformed weights for co output and ci input channels (16 ξ, rows padded to whole panels).</summary>
    internal static long TransformedFloats(int co, int ci) => 16L * WeightPanels(co) * GemmMicroKernel.MR * ci;

    /// <summary>The forward convolution as Winograd sees it (its input x, output y); the weight gradient reads the same view.</summary>
    private static WinoView ForwardView(float* y, float* x, float* bias, in Conv2dGeometry g) => new()
    {
        In = x, Out = y, Bias = bias, Batch = g.Batch, Ci = g.InChannels, Co = g.OutChannels,
        H = g.InHeight, W = g.InWidth, OH = g.OutHeight, OW = g.OutWidth, PadH = g.PadH, PadW = g.PadW,
    };

    /// <summary>True when a 3×3 stride-1 convolution of this shape (any batch) has a Winograd form here.</summary>
    private static bool WinogradShape(in Conv2dGeometry g) =>
        Gemm.UsesAvx512 && g.KernelH == 3 && g.KernelW == 3 && g.StrideH == 1 && g.StrideW == 1
        && g.DilationH == 1 && g.DilationW == 1 && (uint)g.PadH <= 2 && (uint)g.PadW <= 2 && g.OutHeight >= 1 && g.OutWidth >= 1
        && g.InChannels >= 16 && g.OutChannels >= 16 && g.InChannels <= WMaxChannels && g.OutChannels <= WMaxChannels;

    /// <summary>True when this call runs as Winograd F(2×2, 3×3) (at every batch size: at batch 1 the ConvNet's conv2
    /// takes 0.14 ms this way against 0.27 ms as im2col + GEMM).</summary>
    internal static bool UsesWinograd(in Conv2dGeometry g) => WinogradShape(g);

    /// <summary>Floats of scratch Winograd needs (independent of the batch): transformed weights, two cores' buffers.</summary>
    private static long WinogradScratch(in Conv2dGeometry g) =>
        WinogradShape(g) ? Math.Max(WeightsFloats(g) + 2 * WPerCore(Math.Max(g.InChannels, g.OutChannels)), 2 * DwPerCore(g)) : 0;

    // Per core for the weight gradient: V of x [16][C][80], dM of dy [16][O][80] and the core's sum dU [16][O][C].
    private static long DwPerCore(in Conv2dGeometry g) =>
        16 * VXiStride(g.InChannels) + 16 * VXiStride(g.OutChannels) + 16L * g.OutChannels * g.InChannels + 64;

    // Per core: the chunk's transformed input V[16][Ci][80] and one block's products M[16][WBlock][64] (+ slack for
    // the output transform's full-vector reads past a short segment).
    private static long WPerCore(int maxChannels) => 16 * VXiStride(maxChannels) + 16L * MStride + 64;

    // One ξ's rows of V; the extra cache line keeps the 16 rows a (segment, channel) writes out of one L1 set (Ci·80
    // floats alone is a multiple of 4 KiB for every Ci divisible by 64).
    private static long VXiStride(int ci) => (long)ci * VStride + 16;

    private static void WinogradForward(float* y, float* x, float* w, float* bias, in Conv2dGeometry g, float* scratch, Conv2dWeightCache? cache)
    {
        var v = ForwardView(y, x, bias, g);
        RunWithWeights(ref v, w, g, flip: false, scratch, cache);
    }

    /// <summary>The forward pass with its 2×2 max-pool (and ReLU) applied to each output tile in the output transform.</summary>
    private static void WinogradForwardPooled(float* pooled, int* argmax, bool relu, float* x, float* w, float* bias, in Conv2dGeometry g, float* scratch, Conv2dWeightCache? cache)
    {
        var v = ForwardView(null, x, bias, g);
        v.PoolOut = pooled; v.PoolArg = argmax; v.PoolRelu = relu;
        RunWithWeights(ref v, w, g, flip: false, scratch, cache);
    }

    /// <summary>dx (+)= the input gradient: a 3×3 convolution of dy by the flipped, transposed weights, padding 2 − p.</summary>
    private static void WinogradInputGradient(float* dx, float* dy, float* w, in Conv2dGeometry g, bool accumulate, float* scratch, Conv2dWeightCache? cache)
    {
        var v = new WinoView
        {
            In = dy, Out = dx, Batch = g.Batch, Ci = g.OutChannels, Co = g.InChannels,
            H = g.OutHeight, W = g.OutWidth, OH = g.InHeight, OW = g.InWidth, PadH = 2 - g.PadH, PadW = 2 - g.PadW,
            Accumulate = accumulate,
        };
        RunWithWeights(ref v, w, g, flip: true, scratch, cache);
    }

    // The transformed weights come from the layer's cache when it has them for exactly these weights, else they are
    // transformed into the scratch (no cache) or into the cache.
    private static void RunWithWeights(ref WinoView v, float* w, in Conv2dGeometry g, bool flip, float* scratch, Conv2dWeightCache? cache)
    {
        if (cache is null)
        {
            v.U = scratch;
            TransformWeightsSplit(v.U, w, v.Co, v.Ci, flip);
            RunWinograd(ref v, scratch + WeightsFloats(g));
            return;
        }
        var entry = cache.Entry(flip);
        lock (entry)
        {
            v.U = entry.Get(w, g.WeightSize, v.Co, v.Ci, flip);
            RunWinograd(ref v, scratch + WeightsFloats(g));
        }
    }

    // Either orientation's transformed weights (forward, or flipped for the input gradient).
    private static long WeightsFloats(in Conv2dGeometry g) =>
        Math.Max(TransformedFloats(g.OutChannels, g.InChannels), TransformedFloats(g.InChannels, g.OutChannels));

    /// <summary>
    /// U = G·g·Gᵀ for every (co, ci) of row panels [p0, p1), written as the micro-kernel's A panels:
    /// u[((ξ·panels + co/6)·ci + c)·6 + co%6]. Forward: g = w[co, ci]. Flipped (input gradient):
    /// g[kh, kw] = w[ci, co, 2 − kh, 2 − kw], w being [Ci, Co, 3, 3]. The six output channels of a panel are the lanes
    /// of one 8-lane vector (gathered from the weights), so each ξ is one store of a panel's column c.
    /// </summary>
    private static void TransformWeights(float* u, float* w, int co, int ci, bool flip, int p0, int p1)
    {
        const int MR = GemmMicroKernel.MR;
        int panels = WeightPanels(co);
        long xi = (long)panels * ci * MR;
        var half = Vector256.Create(0.5f);
        var t = stackalloc Vector256<float>[12];
        for (int p = p0; p < p1; p++)
        {
            int valid = Math.Min(MR, co - p * MR);
            // Lane r reads output channel 6p + r (the last valid one again past the end, then zeroed).
            var lanes = Vector256.Min(Vector256<int>.Indices, Vector256.Create(valid - 1));
            var keep = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(valid)).AsSingle();
            var index = lanes * (flip ? 9 : ci * 9);
            for (int c = 0; c < ci; c++)
            {
                float* k9 = flip ? w + ((long)c * co + p * MR) * 9 : w + ((long)p * MR * ci + c) * 9;
                Vector256<float> G(int k) => Avx2.GatherVector256(k9 + (flip ? 8 - k : k), index, 4);
                // Columns first: t[a, kw] = (G·g)[a, kw]; then rows: U[a, b] = (t·Gᵀ)[a, b].
                for (int kw = 0; kw < 3; kw++)
                {
                    var g0 = G(kw); var g1 = G(3 + kw); var g2 = G(6 + kw);
                    t[kw] = g0; t[3 + kw] = half * (g0 + g1 + g2); t[6 + kw] = half * (g0 - g1 + g2); t[9 + kw] = g2;
                }
                float* dst = u + ((long)p * ci + c) * MR;
                // Each store writes two lanes past the panel's column; the next column overwrites them, except after the
                // panel's last column, where they would land on the next ξ's (or the other core's) data.
                bool last = c == ci - 1;
                for (int a = 0; a < 4; a++)
                {
                    var h0 = t[3 * a]; var h1 = t[3 * a + 1]; var h2 = t[3 * a + 2];
                    Put(dst + (4 * a + 0) * xi, keep, h0, last);
                    Put(dst + (4 * a + 1) * xi, keep, half * (h0 + h1 + h2), last);
                    Put(dst + (4 * a + 2) * xi, keep, half * (h0 - h1 + h2), last);
                    Put(dst + (4 * a + 3) * xi, keep, h2, last);
                }
            }
        }

        static void Put(float* dst, Vector256<float> keep, Vector256<float> v, bool last)
        {
            v &= keep;
            if (last) Avx.MaskStore(dst, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(MR)).AsSingle(), v);
            else Vector256.Store(v, dst);
        }
    }

    /// <summary>
    /// dw += the weight gradient through the same transforms: with dM = A·dy·Aᵀ on each 2×2 tile of dy (the adjoint of
    /// the output transform) and V = Bᵀ·d·B the forward's transformed input, dU[ξ] = Σ_tiles dM[ξ]·V[ξ]ᵀ ([O×C] per ξ,
    /// summed over 64-tile chunks by the packed GEMM) and dw = Gᵀ·dU·G (the adjoint of the weight transform).
    /// </summary>
    private static void WinogradWeightGradient(float* dw, float* dy, float* x, in Conv2dGeometry g, float* scratch)
    {
        var run = new WinoRun { View = ForwardView(dy, x, null, g), Buffers = scratch, Dw = dw, G = g };
        HelperThread.Run(&DwHalf, &run);
        HelperThread.Run(&DwFold, &run);
    }

    private static void DwHalf(void* state, int half)
    {
        ref var r = ref *(WinoRun*)state;
        ref var v = ref r.View;
        float* vBuf = r.Buffers + half * DwPerCore(r.G), mBuf = vBuf + 16 * VXiStride(v.Ci), dU = mBuf + 16 * VXiStride(v.Co);
        new Span<float>(dU, 16 * v.Co * v.Ci).Clear();
        var segs = stackalloc Segment[WTiles];
        int mid = v.Chunks / 2;
        for (int chunk = half == 0 ? 0 : mid, end = half == 0 ? mid : v.Chunks; chunk < end; chunk++)
        {
            int nSeg = Segments(ref v, chunk, segs, out int nt);
            InputTransform(ref v, segs, nSeg, vBuf);
            GradientTransform(ref v, segs, nSeg, mBuf);
            for (int xi = 0; xi < 16; xi++)
                Gemm.Sgemm(false, true, v.Co, v.Ci, nt, 1f,
                    new ReadOnlySpan<float>(mBuf + xi * VXiStride(v.Co), v.Co * VStride), VStride,
                    new ReadOnlySpan<float>(vBuf + xi * VXiStride(v.Ci), v.Ci * VStride), VStride,
                    1f, new Span<float>(dU + (long)xi * v.Co * v.Ci, v.Co * v.Ci), v.Ci);
        }
    }

    /// <summary>Both cores' dU summed and taken back through the weight transform, half of the output channels each.</summary>
    private static void DwFold(void* state, int half)
    {
        ref var r = ref *(WinoRun*)state;
        int co = r.View.Co, ci = r.View.Ci, mid = co / 2;
        long xs = (long)co * ci;
        float* u0 = r.Buffers + 16 * VXiStride(ci) + 16 * VXiStride(co), u1 = u0 + DwPerCore(r.G);
        float* m = stackalloc float[16];
        for (int o = half == 0 ? 0 : mid, end = half == 0 ? mid : co; o < end; o++)
            for (int c = 0; c < ci; c++)
            {
                long at = (long)o * ci + c;
                for (int k = 0; k < 16; k++) m[k] = u0[at + k * xs] + u1[at + k * xs];
                // Gᵀ·dU·G: rows (a → kh) then columns (b → kw); G's rows are (1,0,0), ½(1,1,1), ½(1,−1,1), (0,0,1).
                float* d = r.Dw + at * 9;
                for (int kh = 0; kh < 3; kh++)
                {
                    float s0, s1, s2, s3;
                    if (kh == 0) { s0 = m[0] + 0.5f * (m[4] + m[8]); s1 = m[1] + 0.5f * (m[5] + m[9]); s2 = m[2] + 0.5f * (m[6] + m[10]); s3 = m[3] + 0.5f * (m[7] + m[11]); }
                    else if (kh == 1) { s0 = 0.5f * (m[4] - m[8]); s1 = 0.5f * (m[5] - m[9]); s2 = 0.5f * (m[6] - m[10]); s3 = 0.5f * (m[7] - m[11]); }
                    else { s0 = 0.5f * (m[4] + m[8]) + m[12]; s1 = 0.5f * (m[5] + m[9]) + m[13]; s2 = 0.5f * (m[6] + m[10]) + m[14]; s3 = 0.5f * (m[7] + m[11]) + m[15]; }
                    d[3 * kh] += s0 + 0.5f * (s1 + s2);
                    d[3 * kh + 1] += 0.5f * (s1 - s2);
                    d[3 * kh + 2] += 0.5f * (s1 + s2) + s3;
                }
            }
    }

    /// <summary>dM[ξ][o][offset + q] = (A·dy·Aᵀ)[ξ] over each segment's 2×2 tiles of dy (zero past its edges).</summary>
    private static void GradientTransform(ref WinoView v, Segment* segs, int nSeg, float* mBuf)
    {
        int pairs = (nSeg + 1) / 2;
        var masks = stackalloc Vector512<float>[2 * WTiles];
        var idx = stackalloc Vector512<int>[WTiles + 2];
        var srcs = stackalloc long[WTiles];
        long plane = (long)v.OH * v.OW, xiStride = VXiStride(v.Co);
        for (int k = 0; k < 2 * pairs; k++)
        {
            if (k == nSeg) { masks[2 * k] = masks[2 * k + 1] = Vector512<float>.Zero; srcs[k] = 0; continue; }
            ref readonly var sg = ref segs[k];
            int col0 = 2 * sg.Col, row0 = 2 * sg.Row;
            var inside = Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(col0), Vector512.Create(v.OW))
                       & Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(2 * sg.Length));
            masks[2 * k] = inside.AsSingle();
            masks[2 * k + 1] = row0 + 1 < v.OH ? inside.AsSingle() : Vector512<float>.Zero;
            srcs[k] = (long)sg.Sample * v.Co * plane + (long)row0 * v.OW + col0;
        }
        PairIndices(segs, pairs, 2, idx);
        int ow = v.OW;
        for (int o = 0; o < v.Co; o++)
        {
            float* dstRow = mBuf + (long)o * VStride, inO = v.Out + o * plane;
            for (int p = 0; p < pairs; p++)
            {
                float* sa = inO + srcs[2 * p], sb = inO + srcs[2 * p + 1], dst = dstRow + segs[2 * p].Offset;
                var ma = masks + 4 * p; var mb = ma + 2; var ix = idx + 2 * p;
                var z = Vector512<float>.Zero;
                var a0 = Avx512F.MaskLoad(sa, ma[0], z); var a1 = Avx512F.MaskLoad(sa + ow, ma[1], z);
                var b0 = Avx512F.MaskLoad(sb, mb[0], z); var b1 = Avx512F.MaskLoad(sb + ow, mb[1], z);
                // A over rows: (e0, e1) → (e0, e0 + e1, e0 − e1, −e1); then over the columns of each.
                GradientRow(a0, b0, ix, dst, 0, xiStride);
                GradientRow(a0 + a1, b0 + b1, ix, dst, 4 * xiStride, xiStride);
                GradientRow(a0 - a1, b0 - b1, ix, dst, 8 * xiStride, xiStride);
                GradientRow(-a1, -b1, ix, dst, 12 * xiStride, xiStride);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientRow(Vector512<float> ua, Vector512<float> ub, Vector512<int>* ix, float* dst, long at, long xiStride)
    {
        var f0 = Avx512F.PermuteVar16x32x2(ua, ix[0], ub); var f1 = Avx512F.PermuteVar16x32x2(ua, ix[1], ub);
        Vector512.Store(f0, dst + at);
        Vector512.Store(f0 + f1, dst + at + xiStride);
        Vector512.Store(f0 - f1, dst + at + 2 * xiStride);
        Vector512.Store(-f1, dst + at + 3 * xiStride);
    }

    private struct WeightJob { public float* U, W; public int Co, Ci; public bool Flip; }

    // The weight transform is ~4 % of a batch-64 call: both cores take half of the (6-row-panel aligned) channels.
    internal static void TransformWeightsSplit(float* u, float* w, int co, int ci, bool flip)
    {
        var job = new WeightJob { U = u, W = w, Co = co, Ci = ci, Flip = flip };
        HelperThread.Run(&WeightHalf, &job);
    }

    private static void WeightHalf(void* state, int half)
    {
        ref var j = ref *(WeightJob*)state;
        int panels = WeightPanels(j.Co), mid = (panels + 1) / 2;
        if (half == 0) TransformWeights(j.U, j.W, j.Co, j.Ci, j.Flip, 0, mid);
        else TransformWeights(j.U, j.W, j.Co, j.Ci, j.Flip, mid, panels);
    }

    private struct WinoRun
    {
        public WinoView View;
        public float* Buffers, Dw;
        public Conv2dGeometry G;   // the call's geometry (the weight gradient's buffer sizes)
    }

    private static void RunWinograd(ref WinoView v, float* buffers)
    {
        var run = new WinoRun { View = v, Buffers = buffers };
        if (v.Chunks == 1) HelperThread.Run(&WinoHalf, &run);
        else HelperThread.ForBlocks(&WinoChunks, &run, v.Chunks, 1);
    }

    // Several chunks: each core takes the next one as it finishes (each chunk writes its own tiles, so who runs which
    // does not change the result), with its own buffers.
    private static void WinoChunks(void* state, int half, int begin, int end)
    {
        ref var r = ref *(WinoRun*)state;
        float* buffers = r.Buffers + half * WPerCore(Math.Max(r.View.Ci, r.View.Co));
        for (int c = begin; c < end; c++) WinoChunk(ref r.View, c, 0, r.View.Co, buffers);
    }

    // A single chunk (a batch-1 forward) is shared by output channels, both cores transforming its input. Split at a
    // 6-row panel, not a 24-row block, so the two halves differ by one panel at most.
    private static void WinoHalf(void* state, int half)
    {
        ref var r = ref *(WinoRun*)state;
        float* buffers = r.Buffers + half * WPerCore(Math.Max(r.View.Ci, r.View.Co));
        int mid = Math.Min((r.View.Panels + 1) / 2 * GemmMicroKernel.MR, r.View.Co);
        if (half == 0) WinoChunk(ref r.View, 0, 0, mid, buffers);
        else if (mid < r.View.Co) WinoChunk(ref r.View, 0, mid, r.View.Co, buffers);
    }

    /// <summary>A run of up to 7 tiles in one tile row of one image (one 16-float window of input columns covers them).</summary>
    private struct Segment { public int Sample, Row, Col, Length, Offset; }

    /// <summary>A chunk's nt tiles as row segments (at most one per tile, so 64).</summary>
    private static int Segments(ref WinoView v, int chunk, Segment* segs, out int nt)
    {
        long t0 = (long)chunk * WTiles;
        nt = (int)Math.Min(WTiles, v.Tiles - t0);
        int nSeg = 0, perImage = v.TilesH * v.TilesW;
        for (long t = t0; t < t0 + nt;)
        {
            int s = (int)(t / perImage), rem = (int)(t % perImage), i = rem / v.TilesW, j = rem % v.TilesW;
            int len = (int)Math.Min(Math.Min(7, v.TilesW - j), t0 + nt - t);
            segs[nSeg++] = new Segment { Sample = s, Row = i, Col = j, Length = len, Offset = (int)(t - t0) };
            t += len;
        }
        return nSeg;
    }

    private static void WinoChunk(ref WinoView v, int chunk, int oBegin, int oEnd, float* buffers)
    {
        const int MR = GemmMicroKernel.MR;
        float* vBuf = buffers, mBuf = buffers + 16 * VXiStride(v.Ci);
        var segs = stackalloc Segment[WTiles];
        int nSeg = Segments(ref v, chunk, segs, out int nt);
        InputTransform(ref v, segs, nSeg, vBuf);
        int panels = v.Panels;
        // A chunk of at most 48 tiles, plus up to FewTiles more (a batch-1 14×14 output has 49), runs the 48-column
        // kernel (and the few by FewTileProducts) instead of a 64-column pass whose last quarter is padding.
        bool narrow = nt <= 48 + FewTiles;
        // Read once per chunk: a static field read inside OutputTransform cost a static-base helper call per tile row
        // segment when the JIT compiled it before this class was initialised (no tiered compilation).
        var interleave = s_interleave;
        for (int o0 = oBegin; o0 < oEnd; o0 += WBlock)
        {
            int rows = Math.Min(WBlock, oEnd - o0);
            for (int xi = 0; xi < 16; xi++)
            {
                float* bPanel = vBuf + xi * VXiStride(v.Ci);
                for (int pr = 0; pr < rows; pr += MR)
                {
                    int mr = Math.Min(MR, rows - pr);
                    float* aPanel = v.U + ((long)xi * panels + (o0 + pr) / MR) * v.Ci * MR;
                    float* c = mBuf + (long)xi * MStride + pr * WTiles;
                    if (mr != MR) GemmMicroKernel.KernelRows(aPanel, bPanel, VStride, v.Ci, c, WTiles, 0f, mr);
                    else if (!narrow) GemmMicroKernel.Kernel6x64(aPanel, bPanel, VStride, v.Ci, c, WTiles, 0f);
                    else
                    {
                        GemmMicroKernel.Kernel6x48(aPanel, bPanel, VStride, v.Ci, c, WTiles, 0f);
                        if (nt > 48) FewTileProducts(aPanel, bPanel, v.Ci, c, 48, nt);
                    }
                }
            }
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < nSeg; k++) OutputTransform(ref v, segs[k], o0 + r, mBuf + (long)r * WTiles, interleave);
        }
    }

    private const int FewTiles = 3;

    /// <summary>
    /// Columns [from, to) of one 6-row panel's products: c[r·64 + t] = Σ_k a[k·6 + r]·b[k·VStride + t], the panel's six
    /// rows in the lanes of an 8-lane vector (masked loads: the lanes past them are never read), four partial sums.
    /// </summary>
    private static void FewTileProducts(float* a, float* b, int ci, float* c, int from, int to)
    {
        const int MR = GemmMicroKernel.MR;
        var rows = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(MR)).AsSingle();
        for (int t = from; t < to; t++)
        {
            var s0 = Vector256<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            int k = 0;
            for (; k + 4 <= ci; k += 4)
            {
                s0 = Vector256.FusedMultiplyAdd(Avx.MaskLoad(a + k * MR, rows), Vector256.Create(b[k * VStride + t]), s0);
                s1 = Vector256.FusedMultiplyAdd(Avx.MaskLoad(a + (k + 1) * MR, rows), Vector256.Create(b[(k + 1) * VStride + t]), s1);
                s2 = Vector256.FusedMultiplyAdd(Avx.MaskLoad(a + (k + 2) * MR, rows), Vector256.Create(b[(k + 2) * VStride + t]), s2);
                s3 = Vector256.FusedMultiplyAdd(Avx.MaskLoad(a + (k + 3) * MR, rows), Vector256.Create(b[(k + 3) * VStride + t]), s3);
            }
            for (; k < ci; k++) s0 = Vector256.FusedMultiplyAdd(Avx.MaskLoad(a + k * MR, rows), Vector256.Create(b[k * VStride + t]), s0);
            var sum = (s0 + s1) + (s2 + s3);
            for (int r = 0; r < MR; r++) c[r * WTiles + t] = sum.GetElement(r);
        }
    }

    // Output lane 2q ← a[q], 2q + 1 ← b[q] (a two-source permute: indices ≥ 16 pick from b).
    private static readonly Vector512<int> s_interleave = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);

    /// <summary>
    /// V[ξ][c][offset + q] = (Bᵀ·d·B)[ξ] for every segment's tiles q and every input channel c. Channels outside,
    /// segments inside, so the 16 rows V[ξ][c] are finished while they sit in L1; two consecutive segments (up to
    /// 7 + 7 tiles) share each permute and store, so a store carries 14 tiles instead of 7.
    /// </summary>
    private static void InputTransform(ref WinoView v, Segment* segs, int nSeg, float* vBuf)
    {
        int pairs = (nSeg + 1) / 2;
        // Per segment and window row: which of the 16 input columns to load (none for a row outside the image or a
        // missing second segment); per pair, the permutes gathering tile column k of both into lanes 0..13.
        var masks = stackalloc Vector512<float>[4 * WTiles];
        var idx = stackalloc Vector512<int>[4 * WTiles / 2 + 4];
        var srcs = stackalloc long[WTiles];
        long plane = (long)v.H * v.W, xiStride = VXiStride(v.Ci);
        for (int k = 0; k < 2 * pairs; k++)
        {
            if (k == nSeg) { for (int a = 0; a < 4; a++) masks[4 * k + a] = Vector512<float>.Zero; srcs[k] = 0; continue; }
            ref readonly var sg = ref segs[k];
            int col0 = 2 * sg.Col - v.PadW, row0 = 2 * sg.Row - v.PadH;
            var lane = Vector512<int>.Indices + Vector512.Create(col0);
            // Input columns inside the image and needed by the segment (2·len + 2 of them).
            var inside = Vector512.GreaterThanOrEqual(lane, Vector512<int>.Zero) & Vector512.LessThan(lane, Vector512.Create(v.W))
                       & Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(2 * sg.Length + 2));
            for (int a = 0; a < 4; a++)
                masks[4 * k + a] = (uint)(row0 + a) < (uint)v.H ? inside.AsSingle() : Vector512<float>.Zero;
            srcs[k] = (long)sg.Sample * v.Ci * plane + (long)row0 * v.W + col0;
        }
        PairIndices(segs, pairs, 4, idx);
        int w = v.W;
        for (int c = 0; c < v.Ci; c++)
        {
            float* dstRow = vBuf + (long)c * VStride, inC = v.In + c * plane;
            for (int p = 0; p < pairs; p++)
            {
                float* sa = inC + srcs[2 * p], sb = inC + srcs[2 * p + 1], dst = dstRow + segs[2 * p].Offset;
                var ma = masks + 8 * p; var mb = ma + 4; var ix = idx + 4 * p;
                var z = Vector512<float>.Zero;
                var a0 = Avx512F.MaskLoad(sa, ma[0], z); var a1 = Avx512F.MaskLoad(sa + w, ma[1], z);
                var a2 = Avx512F.MaskLoad(sa + 2 * w, ma[2], z); var a3 = Avx512F.MaskLoad(sa + 3 * w, ma[3], z);
                var b0 = Avx512F.MaskLoad(sb, mb[0], z); var b1 = Avx512F.MaskLoad(sb + w, mb[1], z);
                var b2 = Avx512F.MaskLoad(sb + 2 * w, mb[2], z); var b3 = Avx512F.MaskLoad(sb + 3 * w, mb[3], z);
                // Bᵀ over rows, then over columns of each row.
                RowTransform(a0 - a2, b0 - b2, ix, dst, 0 * xiStride, xiStride);
                RowTransform(a1 + a2, b1 + b2, ix, dst, 4 * xiStride, xiStride);
                RowTransform(a2 - a1, b2 - b1, ix, dst, 8 * xiStride, xiStride);
                RowTransform(a1 - a3, b1 - b3, ix, dst, 12 * xiStride, xiStride);
            }
        }
    }

    /// <summary>
    /// Per pair of segments, the two-source permutes that gather column k (0 ≤ k &lt; columns) of each tile: lane q takes
    /// window column 2q + k of the first segment's window, lanes past its length the second's (16 + 2(q − lenA) + k).
    /// </summary>
    private static void PairIndices(Segment* segs, int pairs, int columns, Vector512<int>* idx)
    {
        var q = Vector512<int>.Indices;
        for (int p = 0; p < pairs; p++)
        {
            var lenA = Vector512.Create(segs[2 * p].Length);
            var fromA = Vector512.LessThan(q, lenA);
            for (int k = 0; k < columns; k++)
                idx[columns * p + k] = Vector512.Min(Vector512.ConditionalSelect(fromA, q + q, Vector512.Create(16) + (q - lenA) * 2) + Vector512.Create(k), Vector512.Create(31));
        }
    }

    // Whole-vector stores (masked stores are slow on this CPU): lanes past the pair land on the next pairs' tiles,
    // written after this one, or in the row's slack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowTransform(Vector512<float> ua, Vector512<float> ub, Vector512<int>* ix, float* dst, long at, long xiStride)
    {
        var e0 = Avx512F.PermuteVar16x32x2(ua, ix[0], ub); var e1 = Avx512F.PermuteVar16x32x2(ua, ix[1], ub);
        var e2 = Avx512F.PermuteVar16x32x2(ua, ix[2], ub); var e3 = Avx512F.PermuteVar16x32x2(ua, ix[3], ub);
        Vector512.Store(e0 - e2, dst + at);
        Vector512.Store(e1 + e2, dst + at + xiStride);
        Vector512.Store(e2 - e1, dst + at + 2 * xiStride);
        Vector512.Store(e1 - e3, dst + at + 3 * xiStride);
    }

    /// <summary>The segment's 2×2 output tiles of channel o: Aᵀ·M·A from the block's products (row m of the block).</summary>
    private static void OutputTransform(ref WinoView v, in Segment sg, int o, float* m, Vector512<int> interleave)
    {
        long xs = MStride;
        m += sg.Offset;
        Vector512<float> M(int xi) => Vector512.Load(m + xi * xs);
        // Aᵀ over rows: t0b = m0b + m1b + m2b, t1b = m1b − m2b − m3b; then over columns.
        var m10 = M(4); var m11 = M(5); var m12 = M(6); var m13 = M(7);
        var m20 = M(8); var m21 = M(9); var m22 = M(10); var m23 = M(11);
        var t00 = M(0) + m10 + m20; var t01 = M(1) + m11 + m21; var t02 = M(2) + m12 + m22; var t03 = M(3) + m13 + m23;
        var t10 = m10 - m20 - M(12); var t11 = m11 - m21 - M(13); var t12 = m12 - m22 - M(14); var t13 = m13 - m23 - M(15);
        if (v.PoolOut != null)
        {
            // Tile q's four outputs are one pooling window: top-left, top-right, bottom-left, bottom-right, each the
            // convolution's value plus its bias (added before the comparison, as in the unfused chain).
            var tl = t00 + t01 + t02; var tr = t01 - t02 - t03; var bl = t10 + t11 + t12; var br = t11 - t12 - t13;
            if (v.Bias != null) { var bv = Vector512.Create(v.Bias[o]); tl += bv; tr += bv; bl += bv; br += bv; }
            var max = PoolingKernels.Max2x2Lanes(tl, tr, bl, br, v.OW, out var k);
            if (v.PoolRelu) max = Elementwise.Relu(max);
            int ph = v.OH / 2, pw = v.OW / 2;
            long at = (((long)sg.Sample * v.Co + o) * ph + sg.Row) * pw + sg.Col;
            var lanes = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(sg.Length));
            Avx512F.MaskStore(v.PoolOut + at, lanes.AsSingle(), max);
            // The winner's flat index in the convolution's output plane, as MaxPool2dForward reports it.
            if (v.PoolArg != null)
                Avx512F.MaskStore(v.PoolArg + at, lanes, k + Vector512<int>.Indices * Vector512.Create(2) + Vector512.Create(2 * sg.Row * v.OW + 2 * sg.Col));
            return;
        }
        var row0 = Avx512F.PermuteVar16x32x2(t00 + t01 + t02, interleave, t01 - t02 - t03);
        var row1 = Avx512F.PermuteVar16x32x2(t10 + t11 + t12, interleave, t11 - t12 - t13);
        if (v.Bias != null) { var b = Vector512.Create(v.Bias[o]); row0 += b; row1 += b; }
        int y0 = 2 * sg.Row, x0 = 2 * sg.Col;
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(Math.Min(2 * sg.Length, v.OW - x0))).AsSingle();
        float* dst = v.Out + (((long)sg.Sample * v.Co + o) * v.OH + y0) * v.OW + x0;
        Store(dst, mask, row0, v.Accumulate);
        if (y0 + 1 < v.OH) Store(dst + v.OW, mask, row1, v.Accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* dst, Vector512<float> mask, Vector512<float> value, bool accumulate)
    {
        if (accumulate) value += Avx512F.MaskLoad(dst, mask, Vector512<float>.Zero);
        Avx512F.MaskStore(dst, mask, value);
    }
}

/// <summary>
/// A convolution layer's Winograd-transformed weights, kept between calls: inference with unchanged weights skips the
/// weight transform (a quarter of a batch-1 forward of the ConvNet's conv2). Validity is checked, never assumed: each
/// call compares the weights bit for bit with the copy the transform was made from (a 295 KB comparison for conv2, which
/// stops at the first changed value after an optimizer step), so weights changed by any route — an optimizer, a
/// checkpoint load, a direct write into the parameter store — are transformed again. Generated networks keep one per
/// convolution; it is not shared between threads (a network instance is not either; the lock only makes misuse safe).
/// </summary>
public sealed unsafe class Conv2dWeightCache
{
    private readonly Slot _forward = new(), _flipped = new();

    internal Slot Entry(bool flip) => flip ? _flipped : _forward;

    /// <summary>The bytes the cache holds: for each direction used so far, the weights' copy and their transform.</summary>
    public long Bytes => _forward.Bytes + _flipped.Bytes;

    internal sealed class Slot
    {
        private float[] _copy = [], _u = [];
        private int _co, _ci;

        public long Bytes { get { lock (this) return 4L * (_copy.Length + _u.Length); } }

        /// <summary>The transformed weights for w (transformed now unless they are exactly the ones cached).</summary>
        /// <remarks>Locked: concurrent inference calls share the cache, and a caller must never see the copy already
        /// matching while another is still writing the transform. Once valid it is only read.</remarks>
        public float* Get(float* w, int count, int co, int ci, bool flip)
        {
            lock (this) return GetLocked(w, count, co, ci, flip);
        }

        private float* GetLocked(float* w, int count, int co, int ci, bool flip)
        {
            long uSize = Conv2dKernels.TransformedFloats(co, ci);
            var weights = new ReadOnlySpan<float>(w, count);
            bool valid = _copy.Length == count && _co == co && _ci == ci && _u.Length >= uSize && BitsEqual(weights, _copy);
            if (!valid)
            {
                // Pinned, so the pointer handed out stays valid; allocated once per layer (sizes do not change).
                if (_copy.Length != count) _copy = GC.AllocateUninitializedArray<float>(count, pinned: true);
                if (_u.Length < uSize) _u = GC.AllocateUninitializedArray<float>((int)uSize, pinned: true);
                weights.CopyTo(_copy);
                (_co, _ci) = (co, ci);
                fixed (float* u = _u) Conv2dKernels.TransformWeightsSplit(u, w, co, ci, flip);
            }
            return (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_u));
        }

        /// <summary>
        /// Bit-for-bit equality (a NaN equals the same NaN; −0 differs from +0). Four 64-byte XORs OR-ed per test: several
        /// times faster than SequenceEqual, which matters because the check runs on every call, batch 1 included.
        /// </summary>
        private static bool BitsEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        {
            var x = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(a);
            var y = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(b);
            if (x.Length != y.Length) return false;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
                fixed (int* px = x) fixed (int* py = y)
                    for (; i + 64 <= x.Length; i += 64)
                    {
                        var d = (Vector512.Load(px + i) ^ Vector512.Load(py + i)) | (Vector512.Load(px + i + 16) ^ Vector512.Load(py + i + 16))
                              | (Vector512.Load(px + i + 32) ^ Vector512.Load(py + i + 32)) | (Vector512.Load(px + i + 48) ^ Vector512.Load(py + i + 48));
                        if (d != Vector512<int>.Zero) return false;
                    }
            return x[i..].SequenceEqual(y[i..]);
        }
    }
}
