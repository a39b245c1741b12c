using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: B batch, C in-channels, H×W input, O out-channels, KH×KW kernel, OH×OW output, P = OH·OW, Q = C·KH·KW.
// Forward per sample: col[Q,P] = im2col(x); y[O,P] = w[O,Q]·col (+ bias, added while the result is laid out as NCHW).
// Backward: dw += dy·colᵀ, dcol = wᵀ·dy, dx += col2im(dcol). 3×3 stride-1 convolutions with 16–512 channels on both
// sides take the Winograd F(2×2, 3×3) path instead (Conv2dWinograd.cs), chosen per call by UsesWinograd; those with at
// most four input channels (a first layer) run forward and weight gradient as direct loops (Conv2dDirect.cs).
public static unsafe partial class Conv2dKernels
{
    // Samples are processed in chunks: im2col of S samples side by side gives one GEMM with N = S·P columns instead of
    // S GEMMs with N = P (P = 196 leaves a quarter of the last 64-wide panel idle and pays packing per sample).
    private const int TargetColumns = 1536;

    /// <summary>Samples per chunk (independent of the batch, so the scratch size is too).</summary>
    private static int ChunkSamples(in Conv2dGeometry g) => Math.Max(1, TargetColumns / (g.OutHeight * g.OutWidth));

    private static long Q(in Conv2dGeometry g) => (long)g.InChannels * g.KernelH * g.KernelW;

    // Per core: the chunk's columns [Q, S·P], a [O, S·P] staging block and a [Q, O] transposed weight gradient.
    private static long PerCore(in Conv2dGeometry g) => (Q(g) + g.OutChannels) * ChunkSamples(g) * g.OutHeight * g.OutWidth + g.WeightSize;

    /// <summary>Floats of scratch memory Forward/Backward need: per-core chunk buffers and a private dW for the second core.</summary>
    public static long ScratchSize(in Conv2dGeometry g) => Math.Max(Math.Max(2L * PerCore(g) + g.WeightSize, WinogradScratch(g)), DirectScratch(g));

    /// <summary>Pointers and sizes of one call, shared by the two halves of the batch.</summary>
    private struct Args
    {
        public float* Y, X, W, Dx, Dw, Dy, Scratch, Bias;
        public Conv2dGeometry G;
        public bool OverwriteDx;
    }

    /// <summary>y[B,O,OH,OW] = conv(x[B,C,H,W], w[O,C,KH,KW]) (overwrites y).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch) =>
        Forward(y, x, w, default, g, scratch);

    /// <summary>y = conv(x, w) + bias[O] (an empty bias adds nothing): the bias rides on the pass that lays the GEMM
    /// result out as NCHW, so it costs no extra sweep over the output.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, in Conv2dGeometry g, Span<float> scratch) =>
        Forward(y, x, w, bias, g, scratch, null);

    /// <summary>
    /// A convolution followed by a 2×2, stride-2 max-pool (then ReLU with <paramref name="relu"/>), as
    /// <see cref="Forward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, in Conv2dGeometry, Span{float}, Conv2dWeightCache?)"/>
    /// into <paramref name="convOut"/> and then <see cref="PoolingKernels.MaxPool2dForward"/> into <paramref name="pooled"/>
    /// and <paramref name="argmax"/> (empty to skip) would give, bit for bit. With an even output on the Winograd path the
    /// pool runs inside the output transform (each 2×2 output tile is one pooling window), on the direct path over each
    /// pair of output rows as they are computed, so the convolution's output is never written: <paramref name="convOut"/>
    /// is then left untouched (it is only the fallback's buffer).
    /// </summary>
    public static void ForwardMaxPool2x2(Span<float> pooled, Span<int> argmax, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias,
        in Conv2dGeometry g, Span<float> scratch, Conv2dWeightCache? cache, Span<float> convOut, bool relu)
    {
        var pg = new Pool2dGeometry(g.Batch, g.OutChannels, g.OutHeight, g.OutWidth, 2, 2, 2, 2);
        bool direct = UsesDirect(g);
        if (!(UsesWinograd(g) || direct) || g.OutHeight % 2 != 0 || g.OutWidth % 2 != 0)
        {
            Forward(convOut, x, w, bias, g, scratch, cache);
            PoolingKernels.MaxPool2dForward(pooled, argmax, convOut, pg, relu);
            return;
        }
        Check(g, x.Length, w.Length, convOut.Length, scratch.Length);
        CheckBias(bias, g);
        long poolSize = (long)g.Batch * pg.OutSize;
        if (pooled.Length < poolSize || (!argmax.IsEmpty && argmax.Length < poolSize))
            throw new ArgumentException($"Conv2d + MaxPool2d: pooled output {pooled.Length} or argmax {argmax.Length} shorter than {poolSize} for {g}.");
        fixed (float* pp = pooled) fixed (int* pa = argmax) fixed (float* px = x) fixed (float* pw = w) fixed (float* ps = scratch) fixed (float* pb = bias)
        {
            if (direct) DirectForwardPooled(pp, argmax.IsEmpty ? null : pa, relu, px, pw, bias.IsEmpty ? null : pb, g, ps);
            else WinogradForwardPooled(pp, argmax.IsEmpty ? null : pa, relu, px, pw, bias.IsEmpty ? null : pb, g, ps, cache);
        }
    }

    /// <summary>As above; <paramref name="cache"/> (one per layer) keeps the Winograd-transformed weights between calls
    /// with the same weights.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, in Conv2dGeometry g, Span<float> scratch, Conv2dWeightCache? cache)
    {
        Check(g, x.Length, w.Length, y.Length, scratch.Length);
        CheckBias(bias, g);
        fixed (float* py = y) fixed (float* px = x) fixed (float* pw = w) fixed (float* ps = scratch) fixed (float* pb = bias)
        {
            if (UsesWinograd(g)) { WinogradForward(py, px, pw, bias.IsEmpty ? null : pb, g, ps, cache); return; }
            if (UsesDirect(g)) { DirectForward(py, px, pw, bias.IsEmpty ? null : pb, g, ps); return; }
            var a = new Args { Y = py, X = px, W = pw, Scratch = ps, G = g, Bias = bias.IsEmpty ? null : pb };
            // Batch 1 keeps one range and lets the GEMM use both cores instead.
            if (g.Batch > 1) HelperThread.ForBlocks(&ForwardBlock, &a, g.Batch, ChunkSamples(g));
            else ForwardRange(ref a, 0, g.Batch, ps);
        }
    }

    // Samples, a GEMM chunk's worth at a time, to whichever core is free (each writes its own outputs).
    private static void ForwardBlock(void* state, int half, int b0, int b1)
    {
        ref var a = ref *(Args*)state;
        ForwardRange(ref a, b0, b1, a.Scratch + half * PerCore(a.G));
    }

    private static void ForwardRange(ref Args a, int b0, int b1, float* buffers)
    {
        var g = a.G;
        int p = g.OutHeight * g.OutWidth, q = (int)Q(g), o = g.OutChannels, chunk = ChunkSamples(g);
        float* cols = buffers, stage = buffers + Q(g) * chunk * p;
        var w = new ReadOnlySpan<float>(a.W, g.WeightSize);
        for (int b = b0; b < b1; b += chunk)
        {
            int n = Math.Min(chunk, b1 - b), ld = n * p;
            for (int s = 0; s < n; s++) Im2Col(cols + s * p, ld, a.X + (long)(b + s) * g.InSize, g);
            if (n == 1)
            {
                float* yb = a.Y + (long)b * g.OutSize;
                Gemm.Sgemm(false, false, o, p, q, 1f, w, q, new ReadOnlySpan<float>(cols, q * p), p, 0f, new Span<float>(yb, g.OutSize), p);
                if (a.Bias != null)
                    for (int c = 0; c < o; c++) { var row = new Span<float>(yb + (long)c * p, p); System.Numerics.Tensors.TensorPrimitives.Add(row, a.Bias[c], row); }
                continue;
            }
            Gemm.Sgemm(false, false, o, ld, q, 1f, w, q, new ReadOnlySpan<float>(cols, q * ld), ld, 0f, new Span<float>(stage, o * ld), ld);
            // [O, S·P] → S samples of [O, P].
            for (int s = 0; s < n; s++)
            {
                float* dst = a.Y + (long)(b + s) * g.OutSize;
                for (int c = 0; c < o; c++)
                {
                    var src = new ReadOnlySpan<float>(stage + (long)c * ld + s * p, p);
                    if (a.Bias != null) System.Numerics.Tensors.TensorPrimitives.Add(src, a.Bias[c], new Span<float>(dst + (long)c * p, p));
                    else src.CopyTo(new Span<float>(dst + (long)c * p, p));
                }
            }
        }
    }

    /// <summary>
    /// Accumulates dx += dL/dx and dw += dL/dw from dy[B,O,OH,OW]. An empty dx or dw skips that gradient
    /// (first layer; frozen weight).
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch)
        => Backward(dx, dw, dy, x, w, g, scratch, accumulateDx: true);

    /// <summary>As above; with <paramref name="accumulateDx"/> false dx is overwritten (each sample cleared just before
    /// its col2im, while it is in cache), so the caller need not clear it first.</summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch, bool accumulateDx) =>
        Backward(dx, dw, dy, x, w, g, scratch, accumulateDx, null);

    /// <summary>As above, with the layer's cache of Winograd-transformed weights (see the forward overload).</summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch, bool accumulateDx, Conv2dWeightCache? cache)
    {
        Check(g, x.Length, w.Length, dy.Length, scratch.Length);
        if (dx.IsEmpty && dw.IsEmpty) return;
        if (!dx.IsEmpty && dx.Length < (long)g.Batch * g.InSize) throw new ArgumentException($"Conv2d backward: dx has {dx.Length} floats, needs {(long)g.Batch * g.InSize}.");
        if (!dw.IsEmpty && dw.Length < g.WeightSize) throw new ArgumentException($"Conv2d backward: dw has {dw.Length} floats, needs {g.WeightSize}.");
        fixed (float* pdx = dx) fixed (float* pdw = dw) fixed (float* pdy = dy) fixed (float* px = x) fixed (float* pw = w) fixed (float* ps = scratch)
        {
            var a = new Args { Dx = dx.IsEmpty ? null : pdx, Dw = dw.IsEmpty ? null : pdw, Dy = pdy, X = px, W = pw, Scratch = ps, G = g, OverwriteDx = !accumulateDx };
            if (UsesWinograd(g))
            {
                // The weight gradient, then the input gradient (they share the scratch).
                if (a.Dw != null) WinogradWeightGradient(a.Dw, pdy, px, g, ps);
                if (a.Dx != null) WinogradInputGradient(a.Dx, pdy, pw, g, accumulateDx, ps, cache);
                return;
            }
            if (UsesDirect(g) && a.Dw != null)
            {
                // The weight gradient directly; the input gradient (if any) below on im2col.
                DirectWeightGradient(a.Dw, pdy, px, g, ps);
                a.Dw = null;
                if (a.Dx == null) return;
            }
            if (g.Batch > 1)
            {
                HelperThread.Run(&BackwardHalf, &a);
                // The second half accumulated its weight gradient privately (no shared writes); fold it in.
                if (a.Dw != null) Elementwise.AddInPlace(dw[..g.WeightSize], new ReadOnlySpan<float>(ps + 2L * PerCore(g), g.WeightSize));
            }
            else BackwardRange(ref a, 0, g.Batch, ps, a.Dw);
        }
    }

    private static void BackwardHalf(void* state, int half)
    {
        ref var a = ref *(Args*)state;
        int mid = a.G.Batch / 2;
        if (half == 0) { BackwardRange(ref a, 0, mid, a.Scratch, a.Dw); return; }
        float* privateDw = a.Dw == null ? null : a.Scratch + 2L * PerCore(a.G);
        if (privateDw != null) new Span<float>(privateDw, a.G.WeightSize).Clear();
        BackwardRange(ref a, mid, a.G.Batch, a.Scratch + PerCore(a.G), privateDw);
    }

    private static void BackwardRange(ref Args a, int b0, int b1, float* buffers, float* dwPtr)
    {
        var g = a.G;
        int p = g.OutHeight * g.OutWidth, q = (int)Q(g), o = g.OutChannels, chunk = ChunkSamples(g);
        float* cols = buffers, stage = buffers + Q(g) * chunk * p, dwT = stage + (long)o * chunk * p;
        var w = new ReadOnlySpan<float>(a.W, g.WeightSize);
        for (int b = b0; b < b1; b += chunk)
        {
            int n = Math.Min(chunk, b1 - b), ld = n * p;
            // dy of the chunk as one [O, S·P] matrix (the GEMMs' operand); a single sample is used in place.
            float* dyc = a.Dy + (long)b * g.OutSize;
            if (n > 1)
            {
                for (int s = 0; s < n; s++)
                {
                    float* src = a.Dy + (long)(b + s) * g.OutSize;
                    for (int c = 0; c < o; c++) new ReadOnlySpan<float>(src + (long)c * p, p).CopyTo(new Span<float>(stage + (long)c * ld + s * p, p));
                }
                dyc = stage;
            }
            var dyMat = new ReadOnlySpan<float>(dyc, o * ld);
            if (dwPtr != null)
            {
                for (int s = 0; s < n; s++) Im2Col(cols + s * p, ld, a.X + (long)(b + s) * g.InSize, g);
                var colMat = new ReadOnlySpan<float>(cols, q * ld);
                if (q >= o)
                    Gemm.Sgemm(false, true, o, q, ld, 1f, dyMat, ld, colMat, ld, 1f, new Span<float>(dwPtr, g.WeightSize), q);
                else
                {
                    // Few columns per output channel (the first conv: Q = 9): dwᵀ[Q, O] = col·dyᵀ keeps the wide side in N.
                    Gemm.Sgemm(false, true, q, o, ld, 1f, colMat, ld, dyMat, ld, 0f, new Span<float>(dwT, g.WeightSize), o);
                    for (int c = 0; c < o; c++)
                        for (int r = 0; r < q; r++) dwPtr[(long)c * q + r] += dwT[(long)r * o + c];
                }
            }
            if (a.Dx != null)
            {
                Gemm.Sgemm(true, false, q, ld, o, 1f, w, q, dyMat, ld, 0f, new Span<float>(cols, q * ld), ld);
                for (int s = 0; s < n; s++)
                {
                    float* dxs = a.Dx + (long)(b + s) * g.InSize;
                    if (a.OverwriteDx) new Span<float>(dxs, g.InSize).Clear();
                    Col2ImAdd(dxs, cols + s * p, ld, g);
                }
            }
        }
    }

    /// <summary>col[(c,ki,kj), (i,j)] (row stride <paramref name="ld"/>) = x[c, i·s−p+ki·d, j·s−p+kj·d], zero outside.</summary>
    private static void Im2Col(float* col, int ld, float* x, in Conv2dGeometry g)
    {
        if (IsSame(g)) { Im2ColSame(col, ld, x, g); return; }
        int oh = g.OutHeight, ow = g.OutWidth, row = 0;
        for (int c = 0; c < g.InChannels; c++)
        for (int ki = 0; ki < g.KernelH; ki++)
        for (int kj = 0; kj < g.KernelW; kj++, row++)
        {
            float* dst = col + (long)row * ld;
            int off = kj * g.DilationW - g.PadW;
            // Columns j whose source lies inside the row: wj = j·s + off ∈ [0, W).
            int lo = off >= 0 ? 0 : (-off + g.StrideW - 1) / g.StrideW;
            int hiEx = Math.Min(ow, g.InWidth - off <= 0 ? 0 : (g.InWidth - off - 1) / g.StrideW + 1);
            for (int i = 0; i < oh; i++, dst += ow)
            {
                int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                if ((uint)hi >= (uint)g.InHeight || hiEx <= lo) { new Span<float>(dst, ow).Clear(); continue; }
                float* src = x + ((long)c * g.InHeight + hi) * g.InWidth + off;
                for (int j = 0; j < lo; j++) dst[j] = 0f;
                if (g.StrideW == 1) new ReadOnlySpan<float>(src + lo, hiEx - lo).CopyTo(new Span<float>(dst + lo, hiEx - lo));
                else for (int j = lo; j < hiEx; j++) dst[j] = src[(long)j * g.StrideW];
                for (int j = hiEx; j < ow; j++) dst[j] = 0f;
            }
        }
    }

    /// <summary>x += col2im(col) for one sample (the adjoint of <see cref="Im2Col"/>).</summary>
    private static void Col2ImAdd(float* x, float* col, int ld, in Conv2dGeometry g)
    {
        if (IsSame(g)) { Col2ImAddSame(x, col, ld, g); return; }
        int oh = g.OutHeight, ow = g.OutWidth, row = 0;
        for (int c = 0; c < g.InChannels; c++)
        for (int ki = 0; ki < g.KernelH; ki++)
        for (int kj = 0; kj < g.KernelW; kj++, row++)
        {
            float* srcRow = col + (long)row * ld;
            int off = kj * g.DilationW - g.PadW;
            int lo = off >= 0 ? 0 : (-off + g.StrideW - 1) / g.StrideW;
            int hiEx = Math.Min(ow, g.InWidth - off <= 0 ? 0 : (g.InWidth - off - 1) / g.StrideW + 1);
            if (hiEx <= lo) continue;
            for (int i = 0; i < oh; i++)
            {
                int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                if ((uint)hi >= (uint)g.InHeight) continue;
                float* dst = x + ((long)c * g.InHeight + hi) * g.InWidth + off;
                float* s = srcRow + i * ow;
                if (g.StrideW == 1)
                {
                    var d = new Span<float>(dst + lo, hiEx - lo);
                    System.Numerics.Tensors.TensorPrimitives.Add(d, new ReadOnlySpan<float>(s + lo, hiEx - lo), d);
                }
                else for (int j = lo; j < hiEx; j++) dst[(long)j * g.StrideW] += s[j];
            }
        }
    }

    // "Same" convolutions (stride 1, no dilation, output as large as the input: 3×3 with padding 1) map each col row
    // (c, ki, kj) to the input plane shifted by (ki − padH)·W + (kj − padW): one contiguous run per row instead of one
    // short copy per output row (14 floats for conv2), then the few wrapped-around border columns fixed up.
    private static bool IsSame(in Conv2dGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1 && g.OutHeight == g.InHeight && g.OutWidth == g.InWidth;

    /// <summary>For kernel offset (ki, kj): valid output rows [i0, i1) and columns [j0, j1), and the plane shift.</summary>
    private static void SameWindow(in Conv2dGeometry g, int ki, int kj, out int i0, out int i1, out int j0, out int j1, out int shift)
    {
        int dh = ki - g.PadH, dw = kj - g.PadW, h = g.InHeight, w = g.InWidth;
        i0 = Math.Max(0, -dh); i1 = Math.Min(h, h - dh);
        j0 = Math.Max(0, -dw); j1 = Math.Min(w, w - dw);
        shift = dh * w + dw;
    }

    /// <summary>Zeroes n floats; the borders of a padded convolution are a few floats each (≤ W + 1), where a call to
    /// Span.Clear per run costs more than the stores.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Zero(float* p, int n)
    {
        if (n >= 64) { new Span<float>(p, n).Clear(); return; }
        int i = 0;
        for (; i + 16 <= n; i += 16) System.Runtime.Intrinsics.Vector512.Store(System.Runtime.Intrinsics.Vector512<float>.Zero, p + i);
        for (; i < n; i++) p[i] = 0f;
    }

    /// <summary>Zeroes columns [0, j0) and [j1, w) of rows [i0, i1) of a row-major plane of width w.</summary>
    private static void ZeroOutsideColumns(float* plane, int w, int i0, int i1, int j0, int j1)
    {
        if (j0 == 0 && j1 == w) return;
        for (int i = i0; i < i1; i++)
        {
            float* r = plane + i * w;
            for (int j = 0; j < j0; j++) r[j] = 0f;
            for (int j = j1; j < w; j++) r[j] = 0f;
        }
    }

    private static void Im2ColSame(float* col, int ld, float* x, in Conv2dGeometry g)
    {
        int h = g.InHeight, w = g.InWidth, plane = h * w, row = 0;
        for (int c = 0; c < g.InChannels; c++)
        for (int ki = 0; ki < g.KernelH; ki++)
        for (int kj = 0; kj < g.KernelW; kj++, row++)
        {
            float* dst = col + (long)row * ld;
            SameWindow(g, ki, kj, out int i0, out int i1, out int j0, out int j1, out int shift);
            if (i1 <= i0 || j1 <= j0) { new Span<float>(dst, plane).Clear(); continue; }
            // Rows [i0, i1) in one run from the first valid column of row i0 to the last of row i1−1 (never outside the plane).
            int start = i0 * w + j0, end = (i1 - 1) * w + j1;
            Zero(dst, start);
            new ReadOnlySpan<float>(x + (long)c * plane + start + shift, end - start).CopyTo(new Span<float>(dst + start, end - start));
            Zero(dst + end, plane - end);
            // Inside the run, the columns outside [j0, j1) picked up a neighbouring row's edge: zero them.
            ZeroOutsideColumns(dst, w, i0, i1, j0, j1);
        }
    }

    private static void Col2ImAddSame(float* x, float* col, int ld, in Conv2dGeometry g)
    {
        int h = g.InHeight, w = g.InWidth, plane = h * w, row = 0;
        for (int c = 0; c < g.InChannels; c++)
        for (int ki = 0; ki < g.KernelH; ki++)
        for (int kj = 0; kj < g.KernelW; kj++, row++)
        {
            float* src = col + (long)row * ld;
            SameWindow(g, ki, kj, out int i0, out int i1, out int j0, out int j1, out int shift);
            if (i1 <= i0 || j1 <= j0) continue;
            // col is scratch consumed here: zero the entries that would wrap into a neighbouring row, then add one run.
            ZeroOutsideColumns(src, w, i0, i1, j0, j1);
            int start = i0 * w + j0, end = (i1 - 1) * w + j1;
            var d = new Span<float>(x + (long)c * plane + start + shift, end - start);
            System.Numerics.Tensors.TensorPrimitives.Add(d, new ReadOnlySpan<float>(src + start, end - start), d);
        }
    }

    /// <summary>An empty bias means none; a given one needs a value per output channel.</summary>
    private static void CheckBias(ReadOnlySpan<float> bias, in Conv2dGeometry g)
    {
        if (!bias.IsEmpty && bias.Length < g.OutChannels) throw new ArgumentException($"Conv2d: bias has {bias.Length} floats, needs {g.OutChannels}.");
    }

    private static void Check(in Conv2dGeometry g, int x, int w, int y, int scratch)
    {
        if (x < (long)g.Batch * g.InSize || w < g.WeightSize || y < (long)g.Batch * g.OutSize || scratch < ScratchSize(g))
            throw new ArgumentException($"Conv2d: spans too short for {g} (x {x}, w {w}, y/dy {y}, scratch {scratch} of {ScratchSize(g)}).");
    }

    /// <summary>Direct loops over the definition; generic so tests can run them in double.</summary>
    public static class Reference
    {
        /// <summary>y = conv(x, w) by the definition.</summary>
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> w, in Conv2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth;
            for (int b = 0; b < g.Batch; b++)
            for (int o = 0; o < g.OutChannels; o++)
            for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                T sum = T.Zero;
                for (int c = 0; c < g.InChannels; c++)
                for (int ki = 0; ki < g.KernelH; ki++)
                {
                    int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                    if ((uint)hi >= (uint)g.InHeight) continue;
                    for (int kj = 0; kj < g.KernelW; kj++)
                    {
                        int wj = j * g.StrideW - g.PadW + kj * g.DilationW;
                        if ((uint)wj >= (uint)g.InWidth) continue;
                        sum += x[((b * g.InChannels + c) * g.InHeight + hi) * g.InWidth + wj] * w[((o * g.InChannels + c) * g.KernelH + ki) * g.KernelW + kj];
                    }
                }
                y[((b * g.OutChannels + o) * oh + i) * ow + j] = sum;
            }
        }

        /// <summary>dx += ∂/∂x, dw += ∂/∂w by the definition (empty spans skip).</summary>
        public static void Backward<T>(Span<T> dx, Span<T> dw, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, in Conv2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth;
            for (int b = 0; b < g.Batch; b++)
            for (int o = 0; o < g.OutChannels; o++)
            for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                T d = dy[((b * g.OutChannels + o) * oh + i) * ow + j];
                for (int c = 0; c < g.InChannels; c++)
                for (int ki = 0; ki < g.KernelH; ki++)
                {
                    int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                    if ((uint)hi >= (uint)g.InHeight) continue;
                    for (int kj = 0; kj < g.KernelW; kj++)
                    {
                        int wj = j * g.StrideW - g.PadW + kj * g.DilationW;
                        if ((uint)wj >= (uint)g.InWidth) continue;
                        int xi = ((b * g.InChannels + c) * g.InHeight + hi) * g.InWidth + wj;
                        int wi = ((o * g.InChannels + c) * g.KernelH + ki) * g.KernelW + kj;
                        if (!dx.IsEmpty) dx[xi] += d * w[wi];
                        if (!dw.IsEmpty) dw[wi] += d * x[xi];
                    }
                }
            }
        }

        /// <summary>col[(c,ki,kj), (i,j)] = x[c, i·s−p+ki·d, j·s−p+kj·d] (zero outside) for one sample.</summary>
        public static void Im2Col<T>(Span<T> col, ReadOnlySpan<T> x, in Conv2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth, row = 0;
            for (int c = 0; c < g.InChannels; c++)
            for (int ki = 0; ki < g.KernelH; ki++)
            for (int kj = 0; kj < g.KernelW; kj++, row++)
            {
                var dst = col.Slice(row * oh * ow, oh * ow);
                for (int i = 0; i < oh; i++)
                {
                    int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                    var d = dst.Slice(i * ow, ow);
                    if ((uint)hi >= (uint)g.InHeight) { d.Clear(); continue; }
                    var src = x.Slice((c * g.InHeight + hi) * g.InWidth, g.InWidth);
                    int off = kj * g.DilationW - g.PadW;
                    if (g.StrideW == 1)
                    {
                        // Contiguous run: copy the in-range part, zero the padded edges.
                        int lo = Math.Max(0, -off), hiEx = Math.Min(ow, g.InWidth - off);
                        if (hiEx <= lo) { d.Clear(); continue; }
                        d[..lo].Clear();
                        src.Slice(lo + off, hiEx - lo).CopyTo(d[lo..hiEx]);
                        d[hiEx..].Clear();
                    }
                    else
                    {
                        for (int j = 0; j < ow; j++)
                        {
                            int wj = j * g.StrideW + off;
                            d[j] = (uint)wj < (uint)g.InWidth ? src[wj] : T.Zero;
                        }
                    }
                }
            }
        }

        /// <summary>x += col2im(col) for one sample (the adjoint of <see cref="Im2Col{T}"/>).</summary>
        public static void Col2ImAdd<T>(Span<T> x, ReadOnlySpan<T> col, in Conv2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth, row = 0;
            for (int c = 0; c < g.InChannels; c++)
            for (int ki = 0; ki < g.KernelH; ki++)
            for (int kj = 0; kj < g.KernelW; kj++, row++)
            {
                var srcRow = col.Slice(row * oh * ow, oh * ow);
                for (int i = 0; i < oh; i++)
                {
                    int hi = i * g.StrideH - g.PadH + ki * g.DilationH;
                    if ((uint)hi >= (uint)g.InHeight) continue;
                    var dst = x.Slice((c * g.InHeight + hi) * g.InWidth, g.InWidth);
                    var s = srcRow.Slice(i * ow, ow);
                    for (int j = 0; j < ow; j++)
                    {
                        int wj = j * g.StrideW - g.PadW + kj * g.DilationW;
                        if ((uint)wj < (uint)g.InWidth) dst[wj] += s[j];
                    }
                }
            }
        }
    }
}
