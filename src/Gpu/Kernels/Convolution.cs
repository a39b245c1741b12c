using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>A convolution's geometry as kernel scalars (<see cref="Conv2dGeometry"/> on the device).</summary>
internal struct ConvArgs
{
    public int Batch, C, H, W, O, Kh, Kw, Sh, Sw, Ph, Pw, Dh, Dw, Oh, Ow;

    public static ConvArgs Of(in Conv2dGeometry g) => new()
    {
        Batch = g.Batch, C = g.InChannels, H = g.InHeight, W = g.InWidth, O = g.OutChannels, Kh = g.KernelH, Kw = g.KernelW,
        Sh = g.StrideH, Sw = g.StrideW, Ph = g.PadH, Pw = g.PadW, Dh = g.DilationH, Dw = g.DilationW, Oh = g.OutHeight, Ow = g.OutWidth,
    };

    public readonly int Pixels => Oh * Ow;
    public readonly int Patch => C * Kh * Kw;
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs>? _im2col, _col2im;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>? _convScatter;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs>? _convGather;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs>? _convGatherBias;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolArgs>? _pooledConvGradient;

    /// <summary>Scratch floats <see cref="Conv2dForward"/> and <see cref="Conv2dBackward"/> need for geometry <paramref name="g"/>
    /// (one group's, as the CPU kernels take it, when there are <paramref name="groups"/>): the batch's patches, the
    /// output as [O, B·P], and the patches' gradient.</summary>
    public static long Conv2dScratch(in Conv2dGeometry g, int groups = 1)
    {
        long p = (long)g.Batch * g.OutHeight * g.OutWidth;
        long patch = (long)g.InChannels * g.KernelH * g.KernelW;
        return groups * (2 * patch * p + (long)g.OutChannels * p);
    }

    /// <summary>The whole convolution's scalars from one group's geometry.</summary>
    private static ConvArgs Whole(in Conv2dGeometry g, int groups)
    {
        var a = ConvArgs.Of(g);
        if (groups < 1) throw new ArgumentException($"Conv2d: {groups} groups; give at least one.", nameof(groups));
        a.C *= groups; a.O *= groups;
        return a;
    }

    /// <summary>
    /// y[B, O, OH, OW] = conv(x[B, C, H, W], w[O, C/groups, KH, KW]) + bias[O] (bias empty: none), as nn.Conv2d, with
    /// <paramref name="g"/> one group's geometry (C/groups in, O/groups out) as the CPU kernels take it: the
    /// batch's patches are laid out once (im2col, [C·KH·KW, B·P]), one GEMM multiplies them by the weights (with groups,
    /// one batched GEMM: group g's rows of the patches by its block of the weights), and a last pass moves [O, B·P] to
    /// the batch-major output adding the bias. Three launches.
    /// </summary>
    public void Conv2dForward(ArrayView<float> y, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, in Conv2dGeometry g, ArrayView<float> scratch, int groups = 1)
    {
        var a = Whole(g, groups);
        long bp = (long)a.Batch * a.Pixels;
        Need(y, a.O * bp, nameof(y));
        var outT = ConvColumns(x, w, a, groups, g, scratch);
        _convScatter ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int>(ConvScatterKernel);
        Launched();
        _convScatter(checked((int)(a.O * bp)), y, outT, bias.Length > 0 ? bias : outT, a, bias.Length > 0 ? 1 : 0);
    }

    /// <summary>
    /// A convolution and the max-pool that alone reads it (<paramref name="relu"/>: and the ReLU after that) in three
    /// launches where the two took four: im2col and the GEMM as <see cref="Conv2dForward"/>, then the pool reads the GEMM's [O, B·P]
    /// output where it lies, adding the bias as it reads, so the convolution's own output is never written. y and
    /// argmax are <see cref="MaxPool2dForward"/>'s (or <see cref="MaxPool2dReluForward"/>'s) over that output.
    /// </summary>
    public void Conv2dMaxPool2dForward(ArrayView<float> y, ArrayView<int> argmax, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias,
        in Conv2dGeometry g, in Pool2dGeometry pool, ArrayView<float> scratch, bool relu)
    {
        var a = Whole(g, 1);
        var p = PooledConvolution(a, pool, bias, relu);
        var outT = ConvColumns(x, w, a, 1, g, scratch);
        MaxPool(y, argmax, outT, bias.Length > 0 ? bias : outT, p);
    }

    /// <summary>The pool's scalars over a convolution's [O, B·P] GEMM output, checked against the convolution.</summary>
    private PoolArgs PooledConvolution(ConvArgs a, in Pool2dGeometry pool, ArrayView<float> bias, bool relu)
    {
        if (pool.Batch != a.Batch || pool.Channels != a.O || pool.InHeight != a.Oh || pool.InWidth != a.Ow)
            throw new ArgumentException($"Conv2d + MaxPool2d: the pool takes [{pool.Batch}, {pool.Channels}, {pool.InHeight}, {pool.InWidth}], the convolution gives [{a.Batch}, {a.O}, {a.Oh}, {a.Ow}].");
        if (bias.Length > 0) Need(bias, a.O, nameof(bias));
        return PoolArgs.Of(pool) with { Channels = a.O, Columns = 1, Biased = bias.Length > 0 ? 1 : 0, Relu = relu ? 1 : 0 };
    }

    /// <summary>im2col, then the GEMM (batched over groups) into the scratch's [O, B·P] block, which it returns. Two launches.</summary>
    private ArrayView<float> ConvColumns(ArrayView<float> x, ArrayView<float> w, ConvArgs a, int groups, in Conv2dGeometry g, ArrayView<float> scratch)
    {
        long bp = (long)a.Batch * a.Pixels;
        int n = checked((int)bp), og = a.O / groups, patch = a.Patch / groups;
        Need(x, (long)a.Batch * a.C * a.H * a.W, nameof(x)); Need(w, (long)a.O * patch, nameof(w));
        Need(scratch, Conv2dScratch(g, groups), nameof(scratch));
        var cols = scratch.SubView(0, a.Patch * bp);
        var outT = scratch.SubView(2 * a.Patch * bp, a.O * bp);
        Im2Col(cols, x, a);
        if (groups == 1) Gemm(false, false, a.O, n, a.Patch, 1f, w, a.Patch, cols, n, 0f, outT, n);
        else GemmBatched(false, false, groups, og, n, patch, 1f, w, (long)og * patch, cols, patch * bp, 0f, outT, og * bp);
        return outT;
    }

    /// <summary>
    /// The convolution's gradients: dx += ∂L/∂x (dx empty: not needed), dw += ∂L/∂w, db += ∂L/∂b (empty: none) from
    /// dy. dy is moved to [O, B·P] — with a bias, by a group per channel that sums the row as it moves it (db in the
    /// same pass); dw = dyᵀ-GEMM with the recomputed patches; the patches' gradient (one GEMM with the weights) is
    /// folded back onto dx by a gather per input pixel (no atomics).
    /// </summary>
    public void Conv2dBackward(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w,
        in Conv2dGeometry g, ArrayView<float> scratch, int groups = 1)
    {
        var a = Whole(g, groups);
        long bp = (long)a.Batch * a.Pixels;
        Need(dy, a.O * bp, nameof(dy)); Need(scratch, Conv2dScratch(g, groups), nameof(scratch));
        var dyT = scratch.SubView(2 * a.Patch * bp, a.O * bp);
        if (db.Length > 0)
        {
            Need(db, a.O, nameof(db));
            _convGatherBias ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs>(ConvGatherBiasKernel);
            Launched(); _convGatherBias(SumConfig(a.O, bp), dyT, dy, db, a);
        }
        else
        {
            _convGather ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs>(ConvGatherKernel);
            Launched(); _convGather(checked((int)(a.O * bp)), dyT, dy, a);
        }
        ConvBackwardFromColumns(dx, dw, x, w, a, groups, scratch);
    }

    /// <summary>
    /// The gradients of <see cref="Conv2dMaxPool2dForward"/> from the pool's (with <paramref name="relu"/>, the ReLU's)
    /// output gradient dy and output y: the pool routes dy straight into the convolution's [O, B·P] gradient, a group
    /// per channel summing db as it goes (one launch where the pool's backward and the move to that layout were two),
    /// then dw and dx as <see cref="Conv2dBackward"/>.
    /// </summary>
    public void Conv2dMaxPool2dBackward(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> y, ArrayView<int> argmax,
        ArrayView<float> x, ArrayView<float> w, in Conv2dGeometry g, in Pool2dGeometry pool, ArrayView<float> scratch, bool relu)
    {
        var a = Whole(g, 1);
        var p = PooledConvolution(a, pool, db, relu);
        long bp = (long)a.Batch * a.Pixels, pooled = (long)p.Planes * p.Oh * p.Ow;
        Need(dy, pooled, nameof(dy)); Need(argmax, pooled, nameof(argmax)); Need(scratch, Conv2dScratch(g), nameof(scratch));
        if (relu) Need(y, pooled, nameof(y));
        var dyT = scratch.SubView(2 * a.Patch * bp, a.O * bp);
        _pooledConvGradient ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolArgs>(PooledConvGradientKernel);
        Launched(); _pooledConvGradient(SumConfig(a.O, bp), dyT, db.Length > 0 ? db : dyT, dy, relu ? y : dy, argmax, p);
        ConvBackwardFromColumns(dx, dw, x, w, a, 1, scratch);
    }

    /// <summary>dw += dyT-GEMM with the recomputed patches, and dx += the patches' gradient folded back (col2im), from
    /// the output gradient already in the scratch's [O, B·P] block.</summary>
    private void ConvBackwardFromColumns(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> x, ArrayView<float> w, ConvArgs a, int groups, ArrayView<float> scratch)
    {
        long bp = (long)a.Batch * a.Pixels;
        int n = checked((int)bp), og = a.O / groups, patch = a.Patch / groups;
        var cols = scratch.SubView(0, a.Patch * bp);
        var dcols = scratch.SubView(a.Patch * bp, a.Patch * bp);
        var dyT = scratch.SubView(2 * a.Patch * bp, a.O * bp);
        if (dw.Length > 0)
        {
            Im2Col(cols, x, a);
            if (groups == 1) Gemm(false, true, a.O, a.Patch, n, 1f, dyT, n, cols, n, 1f, dw, a.Patch);
            else GemmBatched(false, true, groups, og, patch, n, 1f, dyT, og * bp, cols, patch * bp, 1f, dw, (long)og * patch);
        }
        if (dx.Length > 0)
        {
            if (groups == 1) Gemm(true, false, a.Patch, n, a.O, 1f, w, a.Patch, dyT, n, 0f, dcols, n);
            else GemmBatched(true, false, groups, patch, n, og, 1f, w, (long)og * patch, dyT, og * bp, 0f, dcols, patch * bp);
            _col2im ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs>(Col2ImKernel);
            Launched();
            _col2im(checked(a.Batch * a.C * a.H * a.W), dx, dcols, a);
        }
    }

    /// <summary>Scratch floats of <see cref="ConvTranspose2dForward"/> and <see cref="ConvTranspose2dBackward"/>: the adjoint
    /// convolution's, then room for its output (the input gradient before it is added).</summary>
    public static long ConvTranspose2dScratch(in Conv2dGeometry conv) => Conv2dScratch(conv) + (long)conv.Batch * conv.OutSize;

    /// <summary>
    /// A transposed convolution (nn.ConvTranspose2d) as the adjoint of <paramref name="conv"/>, the convolution from its
    /// output's shape back onto its input's (Compiled.Nets.Kernels.ConvTranspose2dKernels on the CPU): y [B, conv.C,
    /// conv.H, conv.W] = the convolution's input gradient for x, onto a cleared y, plus the bias per channel.
    /// </summary>
    public void ConvTranspose2dForward(ArrayView<float> y, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, in Conv2dGeometry conv, ArrayView<float> scratch)
    {
        long n = (long)conv.Batch * conv.InSize;
        Need(y, n, nameof(y)); Need(scratch, ConvTranspose2dScratch(conv), nameof(scratch));
        y.SubView(0, n).MemSetToZero();
        // Without a weight gradient the convolution's own input is not read.
        Conv2dBackward(y, default, default, x, default, w, conv, scratch.SubView(0, Conv2dScratch(conv)));
        if (bias.Length > 0) AddChannelBias(y, bias, conv.Batch, conv.InChannels, conv.InHeight * conv.InWidth);
    }

    /// <summary>dx += conv(dy) (empty: not needed), dw += the convolution's weight gradient with dy as its input and x as
    /// its output gradient, db += dy's per-channel sums (empty: none).</summary>
    public void ConvTranspose2dBackward(ArrayView<float> dx, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w,
        in Conv2dGeometry conv, ArrayView<float> scratch)
    {
        Need(scratch, ConvTranspose2dScratch(conv), nameof(scratch));
        var convScratch = scratch.SubView(0, Conv2dScratch(conv));
        if (dw.Length > 0) Conv2dBackward(default, dw, default, x, dy, w, conv, convScratch);
        if (db.Length > 0) AddChannelSums(db, dy, conv.Batch, conv.InChannels, conv.InHeight * conv.InWidth);
        if (dx.Length == 0) return;
        long n = (long)conv.Batch * conv.OutSize;
        var temporary = scratch.SubView(Conv2dScratch(conv), n);
        Conv2dForward(temporary, dy, w, default, conv, convScratch);
        AddTo(dx, temporary, n);
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _channelBias;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int>? _channelTotals;

    /// <summary>y[b, c, :] += bias[c] over [batch, channels, plane].</summary>
    private void AddChannelBias(ArrayView<float> y, ArrayView<float> bias, int batch, int channels, int plane)
    {
        Need(bias, channels, nameof(bias));
        _channelBias ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(ChannelBiasKernel);
        Launched(); _channelBias(checked(batch * channels * plane), y, bias, channels, plane);
    }

    /// <summary>sums[c] += Σ over the batch and the plane of x[b, c, :]; one group per channel.</summary>
    internal void AddChannelSums(ArrayView<float> sums, ArrayView<float> x, int batch, int channels, int plane)
    {
        Need(sums, channels, nameof(sums)); Need(x, (long)batch * channels * plane, nameof(x));
        if (channels == 0) return;
        _channelTotals ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(ChannelTotalsKernel);
        Launched(); _channelTotals(SumConfig(channels, (long)batch * plane), sums, x, batch, channels, plane);
    }

    private static void ChannelBiasKernel(Index1D index, ArrayView<float> y, ArrayView<float> bias, int channels, int plane)
    {
        int i = index;
        y[i] += bias[i / plane % channels];
    }

    /// <summary>Channel Grid.IdxX: each thread takes every Group.DimX-th (sample, position) pair.</summary>
    private static void ChannelTotalsKernel(ArrayView<float> sums, ArrayView<float> x, int batch, int channels, int plane)
    {
        int c = Grid.IdxX;
        float s = 0f;
        for (int q = Group.IdxX; q < batch * plane; q += Group.DimX) s += x[((long)(q / plane) * channels + c) * plane + q % plane];
        s = GroupSum(s);
        if (Group.IdxX == 0) sums[c] += s;
    }

    private void Im2Col(ArrayView<float> cols, ArrayView<float> x, ConvArgs a)
    {
        _im2col ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs>(Im2ColKernel);
        Launched();
        _im2col(checked((int)((long)a.Patch * a.Batch * a.Pixels)), cols, x, a);
    }

    /// <summary>cols[(c·KH + ky)·KW + kx, b·P + oy·OW + ox] = x[b, c, oy·s − p + ky·d, ox·s − p + kx·d] (0 outside).</summary>
    private static void Im2ColKernel(Index1D index, ArrayView<float> cols, ArrayView<float> x, ConvArgs a)
    {
        long bp = (long)a.Batch * a.Pixels;
        long row = index / bp, q = index % bp;
        int b = (int)(q / a.Pixels), pix = (int)(q % a.Pixels);
        int oy = pix / a.Ow, ox = pix % a.Ow;
        int kx = (int)(row % a.Kw), ky = (int)(row / a.Kw % a.Kh), c = (int)(row / (a.Kw * a.Kh));
        int iy = oy * a.Sh - a.Ph + ky * a.Dh, ix = ox * a.Sw - a.Pw + kx * a.Dw;
        cols[index] = iy >= 0 && iy < a.H && ix >= 0 && ix < a.W ? x[(((long)b * a.C + c) * a.H + iy) * a.W + ix] : 0f;
    }

    /// <summary>y[b, o, p] = outT[o, b·P + p] (+ bias[o]).</summary>
    private static void ConvScatterKernel(Index1D index, ArrayView<float> y, ArrayView<float> outT, ArrayView<float> bias, ConvArgs a, int hasBias)
    {
        int p = (int)(index % a.Pixels);
        long rest = index / a.Pixels;
        int o = (int)(rest % a.O), b = (int)(rest / a.O);
        float v = outT[(long)o * a.Batch * a.Pixels + (long)b * a.Pixels + p];
        y[index] = hasBias != 0 ? v + bias[o] : v;
    }

    /// <summary>dyT[o, b·P + p] = dy[b, o, p].</summary>
    private static void ConvGatherKernel(Index1D index, ArrayView<float> dyT, ArrayView<float> dy, ConvArgs a)
    {
        long bp = (long)a.Batch * a.Pixels;
        int o = (int)(index / bp);
        long q = index % bp;
        int b = (int)(q / a.Pixels), p = (int)(q % a.Pixels);
        dyT[index] = dy[((long)b * a.O + o) * a.Pixels + p];
    }

    /// <summary>Channel Grid.IdxX: dyT[o, b·P + p] = dy[b, o, p] and db[o] += the row's sum, each thread every
    /// Group.DimX-th value (neighbouring threads read neighbouring pixels), the threads' sums met in a fixed order.</summary>
    private static void ConvGatherBiasKernel(ArrayView<float> dyT, ArrayView<float> dy, ArrayView<float> db, ConvArgs a)
    {
        int o = Grid.IdxX;
        long bp = (long)a.Batch * a.Pixels, row = o * bp;
        float s = 0f;
        for (long q = Group.IdxX; q < bp; q += Group.DimX)
        {
            long b = q / a.Pixels;
            float v = dy[(b * a.O + o) * a.Pixels + q % a.Pixels];
            dyT[row + q] = v;
            s += v;
        }
        s = GroupSum(s);
        if (Group.IdxX == 0) db[o] += s;
    }

    /// <summary>dx[b, c, iy, ix] += Σ over the windows covering it of dcols (the transpose of im2col, as a gather).</summary>
    private static void Col2ImKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dcols, ConvArgs a)
    {
        int ix = (int)(index % a.W);
        long rest = index / a.W;
        int iy = (int)(rest % a.H);
        rest /= a.H;
        int c = (int)(rest % a.C), b = (int)(rest / a.C);
        long bp = (long)a.Batch * a.Pixels;
        float s = 0f;
        for (int ky = 0; ky < a.Kh; ky++)
        {
            int ty = iy + a.Ph - ky * a.Dh;
            if (ty < 0 || ty % a.Sh != 0) continue;
            int oy = ty / a.Sh;
            if (oy >= a.Oh) continue;
            for (int kx = 0; kx < a.Kw; kx++)
            {
                int tx = ix + a.Pw - kx * a.Dw;
                if (tx < 0 || tx % a.Sw != 0) continue;
                int ox = tx / a.Sw;
                if (ox >= a.Ow) continue;
                long row = ((long)c * a.Kh + ky) * a.Kw + kx;
                s += dcols[row * bp + (long)b * a.Pixels + oy * a.Ow + ox];
            }
        }
        dx[index] += s;
    }
}
