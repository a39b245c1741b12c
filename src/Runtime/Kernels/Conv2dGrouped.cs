namespace Compiled.Nets.Kernels;

// Grouped convolution (nn.Conv2d(groups=G), depthwise when G = C): the channels split into G groups, each convolved
// with its own [O/G, C/G, KH, KW] block of the weight. `group` is the geometry of one group (C/G in, O/G out) for the
// whole batch; each (sample, group) runs through the ungrouped kernels, whose scratch for batch 1 suffices, except
// depthwise ones (one input channel per group), which take their own direct path (Conv2dDepthwise.cs).
public static partial class Conv2dKernels
{
    /// <summary>Scratch for <see cref="ForwardGrouped"/> and <see cref="BackwardGrouped"/>: one group of one sample's, or
    /// the whole batch's for one group (the ordinary convolution).</summary>
    public static long GroupedScratchSize(in Conv2dGeometry group, int groups) =>
        IsDepthwise(group, groups) ? DepthwiseScratchSize(group) : ScratchSize(groups == 1 ? group : group with { Batch = 1 });

    /// <summary>y = conv(x, w) + bias per group (overwrites y); <paramref name="groups"/> = 1 is the ordinary convolution.</summary>
    /// <exception cref="ArgumentException">When a span is too short or <paramref name="groups"/> is not positive.</exception>
    public static void ForwardGrouped(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, in Conv2dGeometry group, int groups, Span<float> scratch)
    {
        // One group is the ordinary convolution: the whole batch at once.
        if (groups == 1) { Forward(y, x, w, bias, group, scratch, null); return; }
        var one = CheckGrouped(group, groups, x.Length, w.Length, y.Length, bias.Length);
        if (IsDepthwise(group, groups)) { DepthwiseForward(y, x, w, bias, group, groups, scratch); return; }
        int inBlock = one.InSize, outBlock = one.OutSize, weights = one.WeightSize, outs = one.OutChannels;
        for (int b = 0; b < group.Batch; b++)
            for (int gi = 0; gi < groups; gi++)
            {
                int block = b * groups + gi;
                Forward(y.Slice(block * outBlock, outBlock), x.Slice(block * inBlock, inBlock), w.Slice(gi * weights, weights),
                    bias.IsEmpty ? default : bias.Slice(gi * outs, outs), one, scratch, null);
            }
    }

    /// <summary>dx (+)= and dw += the gradients of <see cref="ForwardGrouped"/> (the bias gradient is the caller's: a
    /// per-channel sum of dy); an empty dx or dw is skipped.</summary>
    public static void BackwardGrouped(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry group, int groups, Span<float> scratch, bool accumulateDx = true)
    {
        if (groups == 1) { Backward(dx, dw, dy, x, w, group, scratch, accumulateDx, null); return; }
        var one = CheckGrouped(group, groups, x.Length, w.Length, dy.Length, 0);
        if (IsDepthwise(group, groups)) { DepthwiseBackward(dx, dw, dy, x, w, group, groups, scratch, accumulateDx); return; }
        int inBlock = one.InSize, outBlock = one.OutSize, weights = one.WeightSize;
        for (int b = 0; b < group.Batch; b++)
            for (int gi = 0; gi < groups; gi++)
            {
                int block = b * groups + gi;
                Backward(dx.IsEmpty ? default : dx.Slice(block * inBlock, inBlock), dw.IsEmpty ? default : dw.Slice(gi * weights, weights),
                    dy.Slice(block * outBlock, outBlock), x.Slice(block * inBlock, inBlock), w.Slice(gi * weights, weights), one, scratch, accumulateDx, null);
            }
    }

    private static Conv2dGeometry CheckGrouped(in Conv2dGeometry group, int groups, int x, int w, int y, int bias)
    {
        if (groups <= 0) throw new ArgumentException($"Conv2d: groups must be positive, got {groups}.");
        var one = group with { Batch = 1 };
        if (x < (long)group.Batch * groups * one.InSize || w < (long)groups * one.WeightSize || y < (long)group.Batch * groups * one.OutSize || bias != 0 && bias < groups * one.OutChannels)
            throw new ArgumentException($"Conv2d: spans too short for {groups} groups of {group} (x {x}, w {w}, y/dy {y}, bias {bias}).");
        return one;
    }
}
