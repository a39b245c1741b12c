using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

public class ConcatTests
{
    [Fact]
    public void Kernels_InterleaveBlocksPerOuterIndex_AndSplitTheGradient()
    {
        float[] a = [1, 2, 3, 4], b = [10, 20, 30, 40, 50, 60];
        var y = new float[10];
        ConcatKernels.Forward(y, a, b, outer: 2, aBlock: 2, bBlock: 3);
        Assert.Equal([1, 2, 10, 20, 30, 3, 4, 40, 50, 60], y);
        float[] da = [1, 1, 1, 1], db = new float[6];
        ConcatKernels.Backward(da, db, y, 2, 2, 3);
        Assert.Equal([2, 3, 4, 5], da);
        Assert.Equal(b, db);
        ConcatKernels.Backward(default, db, y, 2, 2, 3); // a side without a gradient is skipped
        Assert.Equal(b.Select(v => 2 * v), db);
    }

    [Fact]
    public void Eager_ConcatenatesSeveralTensors_AlongAnyDimension_AndChecksShapes()
    {
        var a = new Tensor([1, 2, 3, 4], 2, 1, 2);
        var b = new Tensor([5, 6, 7, 8, 9, 10, 11, 12], 2, 2, 2);
        var c = Tensor.Concat(1, a, b, a);
        Assert.Equal([2, 4, 2], c.Shape);
        Assert.Equal([1, 2, 5, 6, 7, 8, 1, 2, 3, 4, 9, 10, 11, 12, 3, 4], c.Data);
        Assert.Equal([2, 1, 4], Tensor.Concat(-1, a, a).Shape);
        Assert.Throws<ArgumentException>(() => Tensor.Concat(2, a, b));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Concat(3, a, a));
    }
}
