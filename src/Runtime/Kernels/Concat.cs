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
}
