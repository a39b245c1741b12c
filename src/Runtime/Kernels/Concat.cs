namespace Compiled.Nets.Kernels;

/// <summary>
/// Concatenation of two tensors along one dimension (<c>torch.cat</c>). With <c>outer</c> the product of the
/// dimensions before it (batch included) and each side's block the concatenated dimension times those after it,
/// y holds, for every outer index, a's block then b's. Backward splits the gradient the same way (accumulating).
/// </summary>
public static class ConcatKernels
{
    /// <summary>y[o] = a[o] ‖ b[o] for o in [0, outer).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int outer, int aBlock, int bBlock)
    {
        int yBlock = aBlock + bBlock;
        for (int o = 0; o < outer; o++)
        {
            a.Slice(o * aBlock, aBlock).CopyTo(y.Slice(o * yBlock, aBlock));
            b.Slice(o * bBlock, bBlock).CopyTo(y.Slice(o * yBlock + aBlock, bBlock));
        }
    }

    /// <summary>da[o] += dy[o][..aBlock], db[o] += dy[o][aBlock..] (an empty span skips that side).</summary>
    public static void Backward(Span<float> da, Span<float> db, ReadOnlySpan<float> dy, int outer, int aBlock, int bBlock)
    {
        int yBlock = aBlock + bBlock;
        for (int o = 0; o < outer; o++)
        {
            if (!da.IsEmpty) Elementwise.AddInPlace(da.Slice(o * aBlock, aBlock), dy.Slice(o * yBlock, aBlock));
            if (!db.IsEmpty) Elementwise.AddInPlace(db.Slice(o * bBlock, bBlock), dy.Slice(o * yBlock + aBlock, bBlock));
        }
    }

    /// <summary>y[o] = x[o][offset .. offset + yBlock) for o in [0, outer): <c>torch.narrow</c>, a slice along one
    /// dimension (xBlock: that dimension times those after it in the input; offset: start times those after it).</summary>
    /// <exception cref="ArgumentException">When the slice does not fit the block or a span is too short.</exception>
    public static void NarrowForward(Span<float> y, ReadOnlySpan<float> x, int outer, int xBlock, int offset, int yBlock)
    {
        CheckNarrow(y.Length, x.Length, outer, xBlock, offset, yBlock);
        for (int o = 0; o < outer; o++) x.Slice(o * xBlock + offset, yBlock).CopyTo(y.Slice(o * yBlock, yBlock));
    }

    /// <summary>dx[o][offset .. offset + yBlock) += dy[o].</summary>
    public static void NarrowBackward(Span<float> dx, ReadOnlySpan<float> dy, int outer, int xBlock, int offset, int yBlock)
    {
        CheckNarrow(dy.Length, dx.Length, outer, xBlock, offset, yBlock);
        for (int o = 0; o < outer; o++) Elementwise.AddInPlace(dx.Slice(o * xBlock + offset, yBlock), dy.Slice(o * yBlock, yBlock));
    }

    private static void CheckNarrow(int y, int x, int outer, int xBlock, int offset, int yBlock)
    {
        if (offset < 0 || yBlock <= 0 || offset + yBlock > xBlock) throw new ArgumentException($"Narrow: [{offset}, {offset + yBlock}) does not fit a block of {xBlock}.");
        if (y < (long)outer * yBlock || x < (long)outer * xBlock) throw new ArgumentException($"Narrow: {outer} blocks need {(long)outer * xBlock} and {(long)outer * yBlock} values; got {x} and {y}.");
    }
}
