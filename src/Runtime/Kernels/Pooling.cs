using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// Dims: B batch, C channels, H×W input, OH×OW output. Floor mode and, for average pooling, count_include_pad=True
// (PyTorch's defaults). The float entry points run the generic loops at T = float.
public static unsafe class PoolingKernels
{
    /// <summary>
    /// y = max over each window; argmax[B,C,OH,OW] gets the flat index within the (b, c) input plane (empty to skip, for
    /// inference). With <paramref name="relu"/>, y = ReLU(max) — the same as max of ReLU, applied to each output plane
    /// while it is in L1 instead of in a separate sweep (a compiled MaxPool2d → ReLU).
    /// </summary>
    public static void MaxPool2dForward(Span<float> y, Span<int> argmax, ReadOnlySpan<float> x, in Pool2dGeometry g, bool relu = false)
    {
        if (g.PadH != 0 || g.PadW != 0)
        {
            Reference.MaxPool2dForward(y, argmax, x, g);
            if (relu) ReluInPlace(y[..(g.Batch * g.OutSize)]);
            return;
        }
        int planes = g.Batch * g.Channels;
        if (x.Length < (long)planes * g.InHeight * g.InWidth || y.Length < (long)planes * g.OutHeight * g.OutWidth || (!argmax.IsEmpty && argmax.Length < y.Length))
            throw new ArgumentException($"MaxPool2d: spans too short for {g}.");
        fixed (float* py = y) fixed (int* pa = argmax) fixed (float* px = x)
        {
            var a = new MaxArgs { Y = py, Arg = argmax.IsEmpty ? null : pa, X = px, G = g, Relu = relu };
            if ((long)planes * g.OutHeight * g.OutWidth * g.KernelH * g.KernelW > 1 << 15) HelperThread.ForBlocks(&MaxBlock, &a, planes, Math.Max(1, planes / 64));
            else MaxPlanes(ref a, 0, planes);
        }
    }

    private struct MaxArgs { public float* Y; public int* Arg; public float* X; public Pool2dGeometry G; public bool Relu; }

    // Elementwise.Relu in both forms, so a fused pool+ReLU equals the unfused chain's vector body and scalar tail.
    private static void ReluInPlace(Span<float> y)
    {
        int i = 0;
        fixed (float* p = y)
        {
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= y.Length; i += 16) Vector512.Store(Elementwise.Relu(Vector512.Load(p + i)), p + i);
            else // (Vector512 emulated element by element would be slower than the scalar loop)
                for (; i + 8 <= y.Length; i += 8) Vector256.Store(Vector256.Max(Vector256.Load(p + i), Vector256<float>.Zero), p + i);
            for (; i < y.Length; i++) p[i] = Elementwise.Relu(p[i]);
        }
    }

    private static void MaxBlock(void* state, int half, int p0, int p1) => MaxPlanes(ref *(MaxArgs*)state, p0, p1);

    // Unpadded windows always lie inside the input, so the loop needs no bounds tests. NaN wins, as in PyTorch.
    private static void MaxPlanes(ref MaxArgs a, int p0, int p1)
    {
        var g = a.G;
        bool twoByTwo = g.KernelH == 2 && g.KernelW == 2 && g.StrideH == 2 && g.StrideW == 2;
        if (!a.Relu)
        {
            if (twoByTwo) Max2x2(ref a, p0, p1); else MaxGeneral(ref a, p0, p1);
            return;
        }
        int outPlane = g.OutHeight * g.OutWidth;
        for (int bc = p0; bc < p1; bc++)
        {
            if (twoByTwo) Max2x2(ref a, bc, bc + 1); else MaxGeneral(ref a, bc, bc + 1);
            ReluInPlace(new Span<float>(a.Y + (long)bc * outPlane, outPlane));
        }
    }

    private static void MaxGeneral(ref MaxArgs a, int p0, int p1)
    {
        var g = a.G;
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        for (int bc = p0; bc < p1; bc++)
        {
            float* xp = a.X + (long)bc * inPlane;
            float* yp = a.Y + (long)bc * outPlane;
            int* ap = a.Arg == null ? null : a.Arg + (long)bc * outPlane;
            for (int i = 0; i < g.OutHeight; i++)
                for (int j = 0; j < g.OutWidth; j++)
                {
                    int start = i * g.StrideH * g.InWidth + j * g.StrideW, best = start;
                    float bv = xp[start];
                    for (int ki = 0; ki < g.KernelH; ki++)
                    {
                        int row = start + ki * g.InWidth;
                        for (int kj = 0; kj < g.KernelW; kj++)
                        {
                            float v = xp[row + kj];
                            if (v > bv || (float.IsNaN(v) && !float.IsNaN(bv))) { bv = v; best = row + kj; }
                        }
                    }
                    yp[i * g.OutWidth + j] = bv;
                    if (ap != null) ap[i * g.OutWidth + j] = best;
                }
        }
    }

    // The common 2×2/2 window, 16 outputs at a time: each row pair is split into even/odd columns with two-source
    // permutes, the pairs are compared horizontally and then vertically, so the winner (and its index) is the first
    // maximum in window order exactly as in the reference loop, and NaN wins. No data-dependent branches: on real
    // activations the comparisons are coin flips and mispredictions cost more than the arithmetic.
    private static readonly Vector512<int> s_even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> s_odd = s_even + Vector512<int>.One;

    private static void Max2x2(ref MaxArgs a, int p0, int p1)
    {
        var g = a.G;
        if (!Avx512F.IsSupported)
        {
            if (Avx2.IsSupported) Max2x2Vector256(ref a, p0, p1); else MaxGeneral(ref a, p0, p1);
            return;
        }
        int w = g.InWidth, inPlane = g.InHeight * w, oh = g.OutHeight, ow = g.OutWidth, outPlane = oh * ow;
        var even = s_even; var odd = s_odd; var lane2 = s_even;
        for (int bc = p0; bc < p1; bc++)
        {
            float* xp = a.X + (long)bc * inPlane;
            float* yp = a.Y + (long)bc * outPlane;
            int* ap = a.Arg == null ? null : a.Arg + (long)bc * outPlane;
            for (int i = 0; i < oh; i++)
            {
                float* top = xp + 2 * i * w;
                int o = i * ow, rowBase = 2 * i * w;
                if (ow < 16)
                {
                    // Narrow rows: masked loads (lanes past the row are never touched) and masked stores.
                    Max2x2Narrow(top, top + w, rowBase, w, ow, even, odd, lane2, yp + o, ap == null ? null : ap + o);
                    continue;
                }
                for (int j = 0; ; j += 16)
                {
                    if (j > ow - 16) j = ow - 16; // the last chunk overlaps the previous one (same results)
                    Max2x2Chunk(top, top + w, j, rowBase, w, even, odd, lane2, yp + o + j, ap == null ? null : ap + o + j);
                    if (j == ow - 16) break;
                }
            }
        }
    }

    // CPUs without AVX-512: eight windows at a time in Vector256 (the same window-order rule: the later input wins when
    // larger, or when it is the first NaN). The branchy general loop took 6 ms on conv1's output at batch 64 (the
    // comparisons of random data mispredict).
    private static void Max2x2Vector256(ref MaxArgs a, int p0, int p1)
    {
        var g = a.G;
        int w = g.InWidth, inPlane = g.InHeight * w, oh = g.OutHeight, ow = g.OutWidth, outPlane = oh * ow;
        var lanes2 = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        for (int bc = p0; bc < p1; bc++)
        {
            float* xp = a.X + (long)bc * inPlane;
            float* yp = a.Y + (long)bc * outPlane;
            int* ap = a.Arg == null ? null : a.Arg + (long)bc * outPlane;
            for (int i = 0; i < oh; i++)
            {
                int top = 2 * i * w;
                for (int j = 0; j < ow; j += 8)
                {
                    // Rows under eight windows: masked loads (lanes past the row never touched) and stores.
                    bool narrow = ow < 8;
                    if (!narrow && j > ow - 8) j = ow - 8; // the last eight overlap the previous ones (same results)
                    float* t = xp + top + 2 * j, u = t + w;
                    Vector256<float> lo, hi, ulo, uhi;
                    if (narrow)
                    {
                        var m0 = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(2 * ow)).AsSingle();
                        var m1 = Vector256.LessThan(Vector256<int>.Indices + Vector256.Create(8), Vector256.Create(2 * ow)).AsSingle();
                        lo = Avx.MaskLoad(t, m0); hi = Avx.MaskLoad(t + 8, m1); ulo = Avx.MaskLoad(u, m0); uhi = Avx.MaskLoad(u + 8, m1);
                    }
                    else { lo = Avx.LoadVector256(t); hi = Avx.LoadVector256(t + 8); ulo = Avx.LoadVector256(u); uhi = Avx.LoadVector256(u + 8); }
                    var (te, to) = Deinterleave(lo, hi);
                    var (be, bo) = Deinterleave(ulo, uhi);
                    var wt = Wins(te, to); var mt = Vector256.ConditionalSelect(wt, to, te);
                    var wb = Wins(be, bo); var mb = Vector256.ConditionalSelect(wb, bo, be);
                    var wv = Wins(mt, mb);
                    var max = Vector256.ConditionalSelect(wv, mb, mt);
                    var kt = wt.AsInt32() & Vector256<int>.One;
                    var kb = (wb.AsInt32() & Vector256<int>.One) + Vector256.Create(w);
                    var k = Vector256.ConditionalSelect(wv.AsInt32(), kb, kt) + lanes2 + Vector256.Create(top + 2 * j);
                    if (narrow)
                    {
                        var m = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(ow));
                        Avx.MaskStore(yp + i * ow, m.AsSingle(), max);
                        if (ap != null) Avx2.MaskStore(ap + i * ow, m, k);
                        break;
                    }
                    Vector256.Store(max, yp + i * ow + j);
                    if (ap != null) Vector256.Store(k, ap + i * ow + j);
                }
            }
        }

        // (x0, x1, …, x15) → (x0, x2, …, x14), (x1, x3, …, x15).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(Vector256<float> lo, Vector256<float> hi) =>
            (Avx2.Permute4x64(Avx.Shuffle(lo, hi, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle(),
             Avx2.Permute4x64(Avx.Shuffle(lo, hi, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle());

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Wins(Vector256<float> x, Vector256<float> y) =>
            Vector256.GreaterThan(y, x) | (~Vector256.Equals(y, y) & Vector256.Equals(x, x));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Max2x2Chunk(float* top, float* bottom, int j, int rowBase, int w, Vector512<int> even, Vector512<int> odd, Vector512<int> lane2, float* y, int* arg)
    {
        var max = Max2x2Windows(Vector512.Load(top + 2 * j), Vector512.Load(top + 2 * j + 16), Vector512.Load(bottom + 2 * j),
            Vector512.Load(bottom + 2 * j + 16), w, even, odd, out var k);
        Vector512.Store(max, y);
        if (arg != null) Vector512.Store(k + lane2 + Vector512.Create(rowBase + 2 * j), arg);
    }

    /// <summary>One output row of fewer than 16 windows (the 2·ow inputs of each row fit two vectors): masked loads, so
    /// lanes past the row are never touched, and masked stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Max2x2Narrow(float* top, float* bottom, int rowBase, int w, int ow, Vector512<int> even, Vector512<int> odd, Vector512<int> lane2, float* y, int* arg)
    {
        var idx = Vector512<int>.Indices;
        var m0 = Vector512.LessThan(idx, Vector512.Create(2 * ow)).AsSingle();
        var m1 = Vector512.LessThan(idx, Vector512.Create(2 * ow - 16)).AsSingle();
        var z = Vector512<float>.Zero;
        var max = Max2x2Windows(Avx512F.MaskLoad(top, m0, z), Avx512F.MaskLoad(top + 16, m1, z), Avx512F.MaskLoad(bottom, m0, z),
            Avx512F.MaskLoad(bottom + 16, m1, z), w, even, odd, out var k);
        var outMask = Vector512.LessThan(idx, Vector512.Create(ow));
        Avx512F.MaskStore(y, outMask.AsSingle(), max);
        if (arg != null) Avx512F.MaskStore(arg, outMask, k + lane2 + Vector512.Create(rowBase));
    }

    /// <summary>
    /// 16 windows from two rows of 32 inputs each (t0:t1 on top, b0:b1 below): their maxima, and in <paramref name="k"/>
    /// each winner's offset within its window's row pair (0, 1, w or w + 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Max2x2Windows(Vector512<float> t0, Vector512<float> t1, Vector512<float> b0, Vector512<float> b1, int w,
        Vector512<int> even, Vector512<int> odd, out Vector512<int> k)
    {
        var te = Avx512F.PermuteVar16x32x2(t0, even, t1); var to = Avx512F.PermuteVar16x32x2(t0, odd, t1);
        var be = Avx512F.PermuteVar16x32x2(b0, even, b1); var bo = Avx512F.PermuteVar16x32x2(b0, odd, b1);
        return Max2x2Lanes(te, to, be, bo, w, out k);
    }

    /// <summary>
    /// 16 windows of 2×2 from two rows of 32 values each (t0:t1 on top, b0:b1 below): as <see cref="Max2x2Lanes"/>.
    /// The direct convolution's fused pooling uses it on the rows it has just computed. <paramref name="even"/> and
    /// <paramref name="odd"/> are <see cref="EvenLanes"/> and <see cref="OddLanes"/>, read once by the caller before its
    /// loops: read here, a static field can cost a helper call per use when the JIT compiles the caller before this
    /// class is initialised, and with it every vector register the loop holds (all are caller-saved).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Max2x2Rows(Vector512<float> t0, Vector512<float> t1, Vector512<float> b0, Vector512<float> b1, int w,
        Vector512<int> even, Vector512<int> odd, out Vector512<int> k) =>
        Max2x2Windows(t0, t1, b0, b1, w, even, odd, out k);

    /// <summary>The permutes that take a 32-value row pair's even and odd columns.</summary>
    internal static Vector512<int> EvenLanes => s_even;
    internal static Vector512<int> OddLanes => s_odd;

    /// <summary>
    /// The maxima of 16 windows given as their four inputs in window order (top-left, top-right, bottom-left,
    /// bottom-right, one window per lane), and each winner's offset (0, 1, w or w + 1): the first maximum, NaN winning,
    /// as the reference loop picks it. Also the Winograd convolution's fused 2×2 pooling uses it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Max2x2Lanes(Vector512<float> te, Vector512<float> to, Vector512<float> be, Vector512<float> bo, int w, out Vector512<int> k)
    {
        var wt = Wins(te, to); var mt = Vector512.ConditionalSelect(wt, to, te);
        var wb = Wins(be, bo); var mb = Vector512.ConditionalSelect(wb, bo, be);
        var wv = Wins(mt, mb);
        var kt = wt.AsInt32() & Vector512<int>.One;
        var kb = (wb.AsInt32() & Vector512<int>.One) + Vector512.Create(w);
        k = Vector512.ConditionalSelect(wv.AsInt32(), kb, kt);
        return Vector512.ConditionalSelect(wv, mb, mt);
    }

    // Lanes where b (later in window order) replaces a: b is larger, or b is the first NaN.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Wins(Vector512<float> a, Vector512<float> b) =>
        Vector512.GreaterThan(b, a) | (~Vector512.Equals(b, b) & Vector512.Equals(a, a));

    /// <summary>
    /// dx[argmax] += dy; with <paramref name="accumulate"/> false, dx is overwritten instead (zero where no window's
    /// maximum lies), so the caller need not clear it first: each plane is cleared while it is in L1.
    /// </summary>
    public static void MaxPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, in Pool2dGeometry g, bool accumulate = true) =>
        MaxPool2dBackward(dx, dy, argmax, g, accumulate, default);

    /// <summary>
    /// As above for a pool fused with a following ReLU: <paramref name="reluOutput"/> is the fused forward's output, and
    /// only windows whose output is positive pass their gradient (ReLU's derivative, then the pool's scatter, in one pass).
    /// </summary>
    public static void MaxPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, in Pool2dGeometry g, bool accumulate, ReadOnlySpan<float> reluOutput) =>
        MaxPool2dBackward(dx, dy, argmax, g, accumulate, reluOutput, default);

    /// <summary>
    /// As above, and <paramref name="biasGradient"/>[c] += the sum of everything scattered into channel c of dx (when not
    /// empty): the gradient of a bias added to the pool's input, as a convolution adds its own. Each window's gradient
    /// lands on one input, so that is the sum of the routed pooled gradients — a quarter of the values of dx for a 2×2
    /// pool, read while they are in L1 — instead of a separate pass over all of dx (the ConvNet's conv1 gradient is
    /// 12.8 MB at batch 64). Sums run per plane, per core over fixed halves, then add in order: deterministic.
    /// </summary>
    public static void MaxPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, in Pool2dGeometry g, bool accumulate, ReadOnlySpan<float> reluOutput, Span<float> biasGradient)
    {
        long planes = (long)g.Batch * g.Channels, inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        if (dx.Length < planes * inPlane || dy.Length < planes * outPlane || argmax.Length < planes * outPlane || (!reluOutput.IsEmpty && reluOutput.Length < planes * outPlane)
            || (!biasGradient.IsEmpty && biasGradient.Length != g.Channels))
            throw new ArgumentException($"MaxPool2d backward: spans too short for {g} (dx {dx.Length}, dy {dy.Length}, argmax {argmax.Length}, ReLU output {reluOutput.Length}, bias gradient {biasGradient.Length} for {g.Channels} channels).");
        // Each half's per-channel partial sums (on the stack up to 2 × 2048 channels; wider pools sum serially).
        bool parallel = planes * inPlane >= 1 << 16 && planes > 1 && (biasGradient.IsEmpty || g.Channels <= 2048);
        int partials = biasGradient.IsEmpty ? 0 : parallel ? 2 * g.Channels : 0;
        float* part = stackalloc float[partials];
        new Span<float>(part, partials).Clear();
        fixed (float* pdx = dx) fixed (float* pdy = dy) fixed (int* pa = argmax) fixed (float* pr = reluOutput) fixed (float* pdb = biasGradient)
        {
            var a = new BackArgs
            {
                Dx = pdx, Dy = pdy, Arg = pa, Relu = reluOutput.IsEmpty ? null : pr, Accumulate = accumulate, G = g,
                Bias = biasGradient.IsEmpty ? null : parallel ? part : pdb,
            };
            if (parallel) HelperThread.Run(&BackHalf, &a);
            else BackPlanes(ref a, 0, planes, a.Bias);
            if (parallel && a.Bias != null)
                for (int c = 0; c < g.Channels; c++) pdb[c] += part[c] + part[g.Channels + c];
        }
    }

    private struct BackArgs
    {
        public float* Dx, Dy, Relu, Bias;
        public int* Arg;
        public bool Accumulate;
        public Pool2dGeometry G;
        public readonly long Planes => (long)G.Batch * G.Channels;
        public readonly long InPlane => (long)G.InHeight * G.InWidth;
        public readonly long OutPlane => (long)G.OutHeight * G.OutWidth;
    }

    private static void BackHalf(void* state, int half)
    {
        ref var a = ref *(BackArgs*)state;
        long mid = a.Planes / 2;
        if (half == 0) BackPlanes(ref a, 0, mid, a.Bias);
        else BackPlanes(ref a, mid, a.Planes, a.Bias == null ? null : a.Bias + a.G.Channels);
    }

    private static void BackPlanes(ref BackArgs a, long p0, long p1, float* bias)
    {
        var g = a.G;
        bool twoByTwo = g.KernelH == 2 && g.KernelW == 2 && g.StrideH == 2 && g.StrideW == 2 && g.PadH == 0 && g.PadW == 0 && Avx512F.IsSupported;
        // Inputs outside every window (an odd last row or column) get no gradient; overwriting must zero them.
        bool covered = 2 * g.OutHeight == g.InHeight && 2 * g.OutWidth == g.InWidth;
        long inPlane = a.InPlane, outPlane = a.OutPlane;
        for (long bc = p0; bc < p1; bc++)
        {
            float* dx = a.Dx + bc * inPlane, dy = a.Dy + bc * outPlane;
            int* arg = a.Arg + bc * outPlane;
            float* relu = a.Relu == null ? null : a.Relu + bc * outPlane;
            if (twoByTwo)
            {
                if (!a.Accumulate && !covered) new Span<float>(dx, (int)inPlane).Clear();
                Back2x2(dx, dy, arg, relu, g, a.Accumulate || !covered);
                if (bias != null) bias[bc % g.Channels] += RoutedSum(dy, arg, relu, outPlane, inPlane);
                continue;
            }
            if (!a.Accumulate) new Span<float>(dx, (int)inPlane).Clear();
            for (long o = 0; o < outPlane; o++)
            {
                int idx = arg[o];
                float gr = relu == null ? dy[o] : Elementwise.ReluGrad(relu[o], dy[o]);
                if ((uint)idx < (uint)inPlane) dx[idx] += gr;
            }
            if (bias != null) bias[bc % g.Channels] += RoutedSum(dy, arg, relu, outPlane, inPlane);
        }
    }

    /// <summary>The sum of one plane's gradients that reach its input: ReLU-masked, argmax inside the plane.</summary>
    private static float RoutedSum(float* dy, int* arg, float* relu, long outPlane, long inPlane)
    {
        var acc = Vector512<float>.Zero;
        var limit = Vector512.Create((uint)inPlane);
        long o = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; o <= outPlane - 16; o += 16)
            {
                var d = Vector512.Load(dy + o);
                if (relu != null) d = Elementwise.ReluGrad(Vector512.Load(relu + o), d);
                var inside = Vector512.LessThan(Vector512.Load((uint*)arg + o), limit).AsSingle();
                acc += d & inside;
            }
        float sum = Vector512.Sum(acc);
        for (; o < outPlane; o++)
            if ((uint)arg[o] < (uint)inPlane) sum += relu == null ? dy[o] : Elementwise.ReluGrad(relu[o], dy[o]);
        return sum;
    }

    // Output lanes 2q and 2q + 1 of the low (high) half take lane q (q + 8) of a and b: a window's two columns.
    private static readonly Vector512<int> s_zipLo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> s_zipHi = s_zipLo + Vector512.Create(8);

    /// <summary>
    /// One plane of a 2×2/2 pool's gradient, 16 windows at a time: each window's gradient goes to the one of its four
    /// inputs its argmax names, the other three get zero, and the input rows are written whole and in order (added to
    /// with <paramref name="add"/>), so overwriting needs no clearing pass and no scattered writes. An argmax outside
    /// its own window (not one the forward pass wrote) is still honoured, by the scalar rule afterwards.
    /// </summary>
    private static void Back2x2(float* dx, float* dy, int* arg, float* relu, in Pool2dGeometry g, bool add)
    {
        int w = g.InWidth, ow = g.OutWidth, oh = g.OutHeight, inPlane = g.InHeight * w;
        float* end = dx + inPlane;
        var zipLo = s_zipLo; var zipHi = s_zipHi;
        var twoLanes = Vector512<int>.Indices * Vector512.Create(2);
        var z = Vector512<float>.Zero;
        bool stray = false;
        for (int i = 0; i < oh; i++)
        {
            int rowBase = 2 * i * w;
            // The top input row, then the bottom one (each window's offsets 0, 1, then w, w + 1), so that every row is
            // written in address order and a tail's whole-vector store only ever lands on what comes later.
            for (int half = 0; half < 2; half++)
            {
                float* row = dx + rowBase + half * w;
                var first = Vector512.Create(half * w); var second = Vector512.Create(half * w + 1);
                for (int j = 0; j < ow; j += 16)
                {
                    int n = Math.Min(16, ow - j), o = i * ow + j;
                    var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n));
                    Vector512<float> d; Vector512<int> k;
                    if (n == 16)
                    {
                        d = Vector512.Load(dy + o);
                        if (relu != null) d = Elementwise.ReluGrad(Vector512.Load(relu + o), d);
                        k = Vector512.Load(arg + o);
                    }
                    else
                    {
                        d = Avx512F.MaskLoad(dy + o, m.AsSingle(), z);
                        if (relu != null) d = Elementwise.ReluGrad(Avx512F.MaskLoad(relu + o, m.AsSingle(), z), d);
                        k = Avx512F.MaskLoad(arg + o, m, Vector512<int>.Zero);
                    }
                    // The winner's offset in its window's row pair: 0, 1, w or w + 1 for every argmax the forward wrote.
                    k -= twoLanes + Vector512.Create(rowBase + 2 * j);
                    var k0 = Vector512.Equals(k, first); var k1 = Vector512.Equals(k, second);
                    if (half == 0)
                        stray |= ((k0 | k1 | Vector512.Equals(k, Vector512.Create(w)) | Vector512.Equals(k, Vector512.Create(w + 1))) & m) != m;
                    var e = d & k0.AsSingle(); var od = d & k1.AsSingle();
                    Row(row + 2 * j, Avx512F.PermuteVar16x32x2(e, zipLo, od), Avx512F.PermuteVar16x32x2(e, zipHi, od), n, add, end);
                }
            }
        }
        if (!stray) return;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                int o = i * ow + j, idx = arg[o], k = idx - (2 * i * w + 2 * j);
                if (k == 0 || k == 1 || k == w || k == w + 1 || (uint)idx >= (uint)inPlane) continue;
                dx[idx] += relu == null ? dy[o] : Elementwise.ReluGrad(relu[o], dy[o]);
            }

        // 2n floats of a row. Masked stores cost many times a whole one on this CPU (Zen 4), so a short tail is stored as
        // whole vectors when they fit in the plane: the lanes past it hold zero (adding: the value already there) and land
        // on inputs that this loop writes later or that no window covers. Only near the plane's end is the store masked.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]   // a call here spills the loop's vectors (all caller-saved)
        static void Row(float* at, Vector512<float> lo, Vector512<float> hi, int n, bool add, float* end)
        {
            int vectors = n > 8 ? 2 : 1;
            if (n == 16 || at + 16 * vectors <= end)
            {
                if (add) { lo += Vector512.Load(at); if (vectors == 2) hi += Vector512.Load(at + 16); }
                Vector512.Store(lo, at);
                if (vectors == 2) Vector512.Store(hi, at + 16);
                return;
            }
            var idx = Vector512<int>.Indices;
            var m0 = Vector512.LessThan(idx, Vector512.Create(2 * n)).AsSingle();
            var m1 = Vector512.LessThan(idx, Vector512.Create(2 * n - 16)).AsSingle();
            if (add) { lo += Avx512F.MaskLoad(at, m0, Vector512<float>.Zero); if (vectors == 2) hi += Avx512F.MaskLoad(at + 16, m1, Vector512<float>.Zero); }
            Avx512F.MaskStore(at, m0, lo);
            if (vectors == 2) Avx512F.MaskStore(at + 16, m1, hi);
        }
    }

    /// <summary>y = mean over each window, padding counted (count_include_pad=True).</summary>
    public static void AvgPool2dForward(Span<float> y, ReadOnlySpan<float> x, in Pool2dGeometry g) => Reference.AvgPool2dForward(y, x, g);

    /// <summary>dx += dy / (KH·KW) spread over each window.</summary>
    public static void AvgPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, in Pool2dGeometry g) => Reference.AvgPool2dBackward(dx, dy, g);

    /// <summary>Generic loops (the float kernels above and the double-precision tests share them).</summary>
    /// <summary>The input rows (or columns) bin <paramref name="i"/> of <paramref name="outSize"/> averages over: PyTorch's
    /// floor(i·size/out) to ceil((i+1)·size/out), so bins cover the input and may overlap.</summary>
    public static (int Start, int End) AdaptiveBin(int i, int size, int outSize) => (i * size / outSize, ((i + 1) * size + outSize - 1) / outSize);

    /// <summary>
    /// Adaptive average pooling (<c>nn.AdaptiveAvgPool2d</c>): each of <paramref name="planes"/> H×W planes to OH×OW
    /// bin means. Global pooling (1×1) is one vectorised sum per plane.
    /// </summary>
    public static void AdaptiveAvgPool2dForward(Span<float> y, ReadOnlySpan<float> x, int planes, int h, int w, int oh, int ow)
    {
        int area = h * w, outArea = oh * ow;
        if (oh == 1 && ow == 1)
        {
            for (int p = 0; p < planes; p++) y[p] = System.Numerics.Tensors.TensorPrimitives.Sum(x.Slice(p * area, area)) / area;
            return;
        }
        for (int p = 0; p < planes; p++)
        {
            var plane = x.Slice(p * area, area);
            for (int i = 0; i < oh; i++)
            {
                var (r0, r1) = AdaptiveBin(i, h, oh);
                for (int j = 0; j < ow; j++)
                {
                    var (c0, c1) = AdaptiveBin(j, w, ow);
                    float sum = 0;
                    for (int r = r0; r < r1; r++) sum += System.Numerics.Tensors.TensorPrimitives.Sum(plane.Slice(r * w + c0, c1 - c0));
                    y[p * outArea + i * ow + j] = sum / ((r1 - r0) * (c1 - c0));
                }
            }
        }
    }

    /// <summary>The pooling as a [H·W, OH·OW] matrix of bin weights (1/area inside a bin): a plane times it is the
    /// forward pass, which is how an exported ONNX graph computes it.</summary>
    public static float[] AdaptiveAvgPool2dMatrix(int h, int w, int oh, int ow)
    {
        var m = new float[h * w * oh * ow];
        for (int i = 0; i < oh; i++)
        {
            var (r0, r1) = AdaptiveBin(i, h, oh);
            for (int j = 0; j < ow; j++)
            {
                var (c0, c1) = AdaptiveBin(j, w, ow);
                float weight = 1f / ((r1 - r0) * (c1 - c0));
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++) m[(r * w + c) * oh * ow + i * ow + j] = weight;
            }
        }
        return m;
    }

    /// <summary>dx += each bin's gradient spread evenly over the bin (accumulates, as every backward kernel).</summary>
    public static void AdaptiveAvgPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, int planes, int h, int w, int oh, int ow)
    {
        int area = h * w, outArea = oh * ow;
        if (oh == 1 && ow == 1)
        {
            for (int p = 0; p < planes; p++)
            {
                var plane = dx.Slice(p * area, area);
                System.Numerics.Tensors.TensorPrimitives.Add(plane, dy[p] / area, plane);
            }
            return;
        }
        for (int p = 0; p < planes; p++)
        {
            var plane = dx.Slice(p * area, area);
            for (int i = 0; i < oh; i++)
            {
                var (r0, r1) = AdaptiveBin(i, h, oh);
                for (int j = 0; j < ow; j++)
                {
                    var (c0, c1) = AdaptiveBin(j, w, ow);
                    float share = dy[p * outArea + i * ow + j] / ((r1 - r0) * (c1 - c0));
                    for (int r = r0; r < r1; r++)
                    {
                        var row = plane.Slice(r * w + c0, c1 - c0);
                        System.Numerics.Tensors.TensorPrimitives.Add(row, share, row);
                    }
                }
            }
        }
    }

    public static class Reference
    {
        public static void MaxPool2dForward<T>(Span<T> y, Span<int> argmax, ReadOnlySpan<T> x, in Pool2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth, plane = g.InHeight * g.InWidth;
            for (int bc = 0; bc < g.Batch * g.Channels; bc++)
            {
                var xp = x.Slice(bc * plane, plane);
                for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    T best = T.NegativeInfinity;
                    int bestIndex = -1;
                    for (int ki = 0; ki < g.KernelH; ki++)
                    {
                        int hi = i * g.StrideH - g.PadH + ki;
                        if ((uint)hi >= (uint)g.InHeight) continue;
                        for (int kj = 0; kj < g.KernelW; kj++)
                        {
                            int wj = j * g.StrideW - g.PadW + kj;
                            if ((uint)wj >= (uint)g.InWidth) continue;
                            T v = xp[hi * g.InWidth + wj];
                            // NaN wins, as in PyTorch, so a poisoned input is not silently hidden.
                            if (v > best || T.IsNaN(v) || bestIndex < 0) { best = v; bestIndex = hi * g.InWidth + wj; if (T.IsNaN(v)) goto done; }
                        }
                    }
                done:
                    int o = (bc * oh + i) * ow + j;
                    y[o] = best;
                    if (!argmax.IsEmpty) argmax[o] = bestIndex;
                }
            }
        }

        public static void MaxPool2dBackward<T>(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<int> argmax, in Pool2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int outPlane = g.OutHeight * g.OutWidth, plane = g.InHeight * g.InWidth;
            for (int bc = 0; bc < g.Batch * g.Channels; bc++)
                for (int o = 0; o < outPlane; o++)
                {
                    int idx = argmax[bc * outPlane + o];
                    if (idx >= 0) dx[bc * plane + idx] += dy[bc * outPlane + o];
                }
        }

        public static void AvgPool2dForward<T>(Span<T> y, ReadOnlySpan<T> x, in Pool2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth, plane = g.InHeight * g.InWidth;
            for (int bc = 0; bc < g.Batch * g.Channels; bc++)
            for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                T sum = T.Zero;
                int h0 = i * g.StrideH - g.PadH, w0 = j * g.StrideW - g.PadW;
                // Divisor: the window clipped to the padded input (PyTorch's count_include_pad semantics).
                int hEnd = Math.Min(h0 + g.KernelH, g.InHeight + g.PadH), wEnd = Math.Min(w0 + g.KernelW, g.InWidth + g.PadW);
                int count = (hEnd - h0) * (wEnd - w0);
                for (int hi = Math.Max(h0, 0); hi < Math.Min(h0 + g.KernelH, g.InHeight); hi++)
                for (int wj = Math.Max(w0, 0); wj < Math.Min(w0 + g.KernelW, g.InWidth); wj++)
                    sum += x[bc * plane + hi * g.InWidth + wj];
                y[(bc * oh + i) * ow + j] = sum / T.CreateChecked(count);
            }
        }

        public static void AvgPool2dBackward<T>(Span<T> dx, ReadOnlySpan<T> dy, in Pool2dGeometry g) where T : IFloatingPointIeee754<T>
        {
            int oh = g.OutHeight, ow = g.OutWidth, plane = g.InHeight * g.InWidth;
            for (int bc = 0; bc < g.Batch * g.Channels; bc++)
            for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                int h0 = i * g.StrideH - g.PadH, w0 = j * g.StrideW - g.PadW;
                int hEnd = Math.Min(h0 + g.KernelH, g.InHeight + g.PadH), wEnd = Math.Min(w0 + g.KernelW, g.InWidth + g.PadW);
                T d = dy[(bc * oh + i) * ow + j] / T.CreateChecked((hEnd - h0) * (wEnd - w0));
                for (int hi = Math.Max(h0, 0); hi < Math.Min(h0 + g.KernelH, g.InHeight); hi++)
                for (int wj = Math.Max(w0, 0); wj < Math.Min(w0 + g.KernelW, g.InWidth); wj++)
                    dx[bc * plane + hi * g.InWidth + wj] += d;
            }
        }
    }
}
