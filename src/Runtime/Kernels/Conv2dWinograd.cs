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
// padding 2 − p), so the same routine serves forward and backward-to-input; the weight gradient stays on im2col.
public static unsafe partial class Conv2dKernels
{
    private const int WTiles = GemmMicroKernel.NR;      // tiles per chunk: one micro-kernel panel wide
    private const int WBlock = 4 * GemmMicroKernel.MR;  // output channels whose 16 products are kept at once
    private const int VStride = WTiles + 16;            // a V row and 16 floats of slack for whole-vector stores
    private const int MStride = WBlock * WTiles + 16;   // one ξ's block of products, a cache line apart from the next
    private const int WMinTiles = 4 * WTiles;           // fewer tiles: the weight transform per call does not pay
    private const int WMaxChannels = 512;                // bounds a chunk's buffers (V is 16·Ci·64 floats)

    /// <summary>A convolution as Winograd sees it: forward, or the input gradient as a convolution of dy.</summary>
    private struct WinoView
    {
        public float* In, Out, U, Bias;
        public int Batch, Ci, Co, H, W, OH, OW, PadH, PadW;
        public bool Accumulate;
        public int TilesH => (OH + 1) / 2;
        public int TilesW => (OW + 1) / 2;
        public int Panels => (Co + GemmMicroKernel.MR - 1) / GemmMicroKernel.MR;
    }

    /// <summary>True when a 3×3 stride-1 convolution of this shape (any batch) has a Winograd form here.</summary>
    private static bool WinogradShape(in Conv2dGeometry g) =>
        Gemm.UsesAvx512 && g.KernelH == 3 && g.KernelW == 3 && g.StrideH == 1 && g.StrideW == 1
        && g.DilationH == 1 && g.DilationW == 1 && (uint)g.PadH <= 2 && (uint)g.PadW <= 2 && g.OutHeight >= 1 && g.OutWidth >= 1
        && g.InChannels >= 16 && g.OutChannels >= 16 && g.InChannels <= WMaxChannels && g.OutChannels <= WMaxChannels;

    /// <summary>True when this call's forward and input gradient run as Winograd F(2×2, 3×3).</summary>
    internal static bool UsesWinograd(in Conv2dGeometry g) =>
        WinogradShape(g) && (long)g.Batch * ((g.OutHeight + 1) / 2) * ((g.OutWidth + 1) / 2) >= WMinTiles;

    /// <summary>Floats of scratch Winograd needs (independent of the batch): transformed weights, two cores' buffers.</summary>
    private static long WinogradScratch(in Conv2dGeometry g) =>
        WinogradShape(g) ? WeightsFloats(g) + 2 * WPerCore(Math.Max(g.InChannels, g.OutChannels)) : 0;

    // Per core: the chunk's transformed input V[16][Ci][64] and one block's products M[16][WBlock][64] (+ slack for
    // the output transform's full-vector reads past a short segment).
    private static long WPerCore(int maxChannels) => 16 * VXiStride(maxChannels) + 16L * MStride + 64;

    // One ξ's rows of V; the extra cache line keeps the 16 rows a (segment, channel) writes out of one L1 set (Ci·80
    // floats alone is a multiple of 4 KiB for every Ci divisible by 64).
    private static long VXiStride(int ci) => (long)ci * VStride + 16;

    private static void WinogradForward(float* y, float* x, float* w, float* bias, in Conv2dGeometry g, float* scratch)
    {
        var v = new WinoView
        {
            In = x, Out = y, U = scratch, Bias = bias, Batch = g.Batch, Ci = g.InChannels, Co = g.OutChannels,
            H = g.InHeight, W = g.InWidth, OH = g.OutHeight, OW = g.OutWidth, PadH = g.PadH, PadW = g.PadW,
        };
        TransformWeights(v.U, w, g.OutChannels, g.InChannels, flip: false);
        RunWinograd(ref v, scratch + WeightsFloats(g));
    }

    /// <summary>dx (+)= the input gradient: a 3×3 convolution of dy by the flipped, transposed weights, padding 2 − p.</summary>
    private static void WinogradInputGradient(float* dx, float* dy, float* w, in Conv2dGeometry g, bool accumulate, float* scratch)
    {
        var v = new WinoView
        {
            In = dy, Out = dx, U = scratch, Batch = g.Batch, Ci = g.OutChannels, Co = g.InChannels,
            H = g.OutHeight, W = g.OutWidth, OH = g.InHeight, OW = g.InWidth, PadH = 2 - g.PadH, PadW = 2 - g.PadW,
            Accumulate = accumulate,
        };
        TransformWeights(v.U, w, g.InChannels, g.OutChannels, flip: true);
        RunWinograd(ref v, scratch + WeightsFloats(g));
    }

    private static long WeightsFloats(in Conv2dGeometry g)
    {
        long r6(int n) => (n + GemmMicroKernel.MR - 1) / GemmMicroKernel.MR * GemmMicroKernel.MR;
        return 16 * Math.Max(r6(g.OutChannels) * g.InChannels, r6(g.InChannels) * g.OutChannels);
    }

    /// <summary>
    /// U = G·g·Gᵀ for every (co, ci), written as the micro-kernel's A panels: u[((ξ·panels + co/6)·ci + c)·6 + co%6].
    /// Forward: g = w[co, ci]. Flipped (input gradient): g[kh, kw] = w[ci, co, 2 − kh, 2 − kw], w being [Ci, Co, 3, 3].
    /// </summary>
    private static void TransformWeights(float* u, float* w, int co, int ci, bool flip)
    {
        const int MR = GemmMicroKernel.MR;
        int panels = (co + MR - 1) / MR;
        float* t = stackalloc float[12];
        for (int o = 0; o < panels * MR; o++)
        for (int c = 0; c < ci; c++)
        {
            long at = ((long)(o / MR) * ci + c) * MR + o % MR, xi = (long)panels * ci * MR;
            if (o >= co) { for (int k = 0; k < 16; k++) u[at + k * xi] = 0f; continue; }
            float* k9 = flip ? w + ((long)c * co + o) * 9 : w + ((long)o * ci + c) * 9;
            // Columns first: t[a, kw] = (G·g)[a, kw]; then rows: U[a, b] = (t·Gᵀ)[a, b].
            for (int kw = 0; kw < 3; kw++)
            {
                float g0 = flip ? k9[8 - kw] : k9[kw], g1 = flip ? k9[5 - kw] : k9[3 + kw], g2 = flip ? k9[2 - kw] : k9[6 + kw];
                t[kw] = g0; t[3 + kw] = 0.5f * (g0 + g1 + g2); t[6 + kw] = 0.5f * (g0 - g1 + g2); t[9 + kw] = g2;
            }
            for (int a = 0; a < 4; a++)
            {
                float h0 = t[3 * a], h1 = t[3 * a + 1], h2 = t[3 * a + 2];
                u[at + (4 * a + 0) * xi] = h0;
                u[at + (4 * a + 1) * xi] = 0.5f * (h0 + h1 + h2);
                u[at + (4 * a + 2) * xi] = 0.5f * (h0 - h1 + h2);
                u[at + (4 * a + 3) * xi] = h2;
            }
        }
    }

    private struct WinoRun
    {
        public WinoView View;
        public float* Buffers;
        public int Chunks;
    }

    private static void RunWinograd(ref WinoView v, float* buffers)
    {
        long tiles = (long)v.Batch * v.TilesH * v.TilesW;
        var run = new WinoRun { View = v, Buffers = buffers, Chunks = (int)((tiles + WTiles - 1) / WTiles) };
        TwoCores.Run(&WinoHalf, &run);
    }

    // The two cores take half of the chunks each (there are at least four), with their own buffers.
    private static void WinoHalf(void* state, int half)
    {
        ref var r = ref *(WinoRun*)state;
        float* buffers = r.Buffers + half * WPerCore(Math.Max(r.View.Ci, r.View.Co));
        int mid = r.Chunks / 2;
        for (int c = half == 0 ? 0 : mid, end = half == 0 ? mid : r.Chunks; c < end; c++) WinoChunk(ref r.View, c, buffers);
    }

    /// <summary>A run of up to 7 tiles in one tile row of one image (one 16-float window of input columns covers them).</summary>
    private struct Segment { public int Sample, Row, Col, Length, Offset; }

    [SkipLocalsInit]
    private static void WinoChunk(ref WinoView v, int chunk, float* buffers)
    {
        const int MR = GemmMicroKernel.MR;
        long tiles = (long)v.Batch * v.TilesH * v.TilesW, t0 = (long)chunk * WTiles;
        int nt = (int)Math.Min(WTiles, tiles - t0);
        float* vBuf = buffers, mBuf = buffers + 16 * VXiStride(v.Ci);
        // The chunk's tiles as row segments (at most one per tile, so 64).
        var segs = stackalloc Segment[WTiles];
        int nSeg = 0, perImage = v.TilesH * v.TilesW;
        for (long t = t0; t < t0 + nt;)
        {
            int s = (int)(t / perImage), rem = (int)(t % perImage), i = rem / v.TilesW, j = rem % v.TilesW;
            int len = (int)Math.Min(Math.Min(7, v.TilesW - j), t0 + nt - t);
            segs[nSeg++] = new Segment { Sample = s, Row = i, Col = j, Length = len, Offset = (int)(t - t0) };
            t += len;
        }
        InputTransform(ref v, segs, nSeg, vBuf);
        int panels = v.Panels;
        for (int o0 = 0; o0 < v.Co; o0 += WBlock)
        {
            int rows = Math.Min(WBlock, v.Co - o0);
            for (int xi = 0; xi < 16; xi++)
            {
                float* bPanel = vBuf + xi * VXiStride(v.Ci);
                for (int pr = 0; pr < rows; pr += MR)
                {
                    int mr = Math.Min(MR, rows - pr);
                    float* aPanel = v.U + ((long)xi * panels + (o0 + pr) / MR) * v.Ci * MR;
                    float* c = mBuf + (long)xi * MStride + pr * WTiles;
                    if (mr == MR) GemmMicroKernel.Kernel6x64(aPanel, bPanel, VStride, v.Ci, c, WTiles, 0f);
                    else GemmMicroKernel.KernelRows(aPanel, bPanel, VStride, v.Ci, c, WTiles, 0f, mr);
                }
            }
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < nSeg; k++) OutputTransform(ref v, segs[k], o0 + r, mBuf + (long)r * WTiles);
        }
    }

    // Lane q of e_k takes u[2q + k]: the k-th column of tile q of a 16-column window (lanes past 7 are unused).
    private static readonly Vector512<int> s_col0 = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 15, 15, 15, 15, 15, 15, 15, 15);
    private static readonly Vector512<int> s_col1 = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 15, 15, 15, 15, 15, 15, 15, 15);
    private static readonly Vector512<int> s_col2 = Vector512.Create(2, 4, 6, 8, 10, 12, 14, 15, 15, 15, 15, 15, 15, 15, 15, 15);
    private static readonly Vector512<int> s_col3 = Vector512.Create(3, 5, 7, 9, 11, 13, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15);
    // Output lane 2q ← a[q], 2q + 1 ← b[q] (a two-source permute: indices ≥ 16 pick from b).
    private static readonly Vector512<int> s_interleave = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);

    /// <summary>
    /// V[ξ][c][offset + q] = (Bᵀ·d·B)[ξ] for every segment's tiles q and every input channel c. Channels outside,
    /// segments inside: the 16 rows V[ξ][c] are finished while they sit in L1 (segments the other way round revisited
    /// each row's cache lines once per segment, after the whole V had left L2).
    /// </summary>
    [SkipLocalsInit]
    private static void InputTransform(ref WinoView v, Segment* segs, int nSeg, float* vBuf)
    {
        // Per segment and window row: which of the 16 input columns to load (none for a row outside the image).
        var masks = stackalloc Vector512<float>[4 * WTiles];
        var srcs = stackalloc long[WTiles];
        long plane = (long)v.H * v.W, xiStride = VXiStride(v.Ci);
        for (int k = 0; k < nSeg; k++)
        {
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
        int w = v.W;
        for (int c = 0; c < v.Ci; c++)
        {
            float* dstRow = vBuf + (long)c * VStride, inC = v.In + c * plane;
            for (int k = 0; k < nSeg; k++)
            {
                float* src = inC + srcs[k], dst = dstRow + segs[k].Offset;
                var m = masks + 4 * k;
                var z = Vector512<float>.Zero;
                var d0 = Avx512F.MaskLoad(src, m[0], z);
                var d1 = Avx512F.MaskLoad(src + w, m[1], z);
                var d2 = Avx512F.MaskLoad(src + 2 * w, m[2], z);
                var d3 = Avx512F.MaskLoad(src + 3 * w, m[3], z);
                // Bᵀ over rows, then over columns of each row.
                RowTransform(d0 - d2, dst, 0 * xiStride, xiStride);
                RowTransform(d1 + d2, dst, 4 * xiStride, xiStride);
                RowTransform(d2 - d1, dst, 8 * xiStride, xiStride);
                RowTransform(d1 - d3, dst, 12 * xiStride, xiStride);
            }
        }
    }

    // Whole-vector stores (masked stores are slow on this CPU): lanes past the segment land on the next segments' tiles,
    // written after this one, or in the row's slack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowTransform(Vector512<float> u, float* dst, long at, long xiStride)
    {
        var e0 = Avx512F.PermuteVar16x32(u, s_col0); var e1 = Avx512F.PermuteVar16x32(u, s_col1);
        var e2 = Avx512F.PermuteVar16x32(u, s_col2); var e3 = Avx512F.PermuteVar16x32(u, s_col3);
        Vector512.Store(e0 - e2, dst + at);
        Vector512.Store(e1 + e2, dst + at + xiStride);
        Vector512.Store(e2 - e1, dst + at + 2 * xiStride);
        Vector512.Store(e1 - e3, dst + at + 3 * xiStride);
    }

    /// <summary>The segment's 2×2 output tiles of channel o: Aᵀ·M·A from the block's products (row m of the block).</summary>
    private static void OutputTransform(ref WinoView v, in Segment sg, int o, float* m)
    {
        long xs = MStride;
        m += sg.Offset;
        Vector512<float> M(int xi) => Vector512.Load(m + xi * xs);
        // Aᵀ over rows: t0b = m0b + m1b + m2b, t1b = m1b − m2b − m3b; then over columns.
        var m10 = M(4); var m11 = M(5); var m12 = M(6); var m13 = M(7);
        var m20 = M(8); var m21 = M(9); var m22 = M(10); var m23 = M(11);
        var t00 = M(0) + m10 + m20; var t01 = M(1) + m11 + m21; var t02 = M(2) + m12 + m22; var t03 = M(3) + m13 + m23;
        var t10 = m10 - m20 - M(12); var t11 = m11 - m21 - M(13); var t12 = m12 - m22 - M(14); var t13 = m13 - m23 - M(15);
        var row0 = Avx512F.PermuteVar16x32x2(t00 + t01 + t02, s_interleave, t01 - t02 - t03);
        var row1 = Avx512F.PermuteVar16x32x2(t10 + t11 + t12, s_interleave, t11 - t12 - t13);
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
