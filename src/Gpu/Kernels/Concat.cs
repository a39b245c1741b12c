using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _concat;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _concatBackward;

    /// <summary>y[o, :] = [a[o, :A], b[o, :B]] for o &lt; outer (Tensor.Concat along a dimension: outer is the product of
    /// the dimensions before it, A and B the sizes from it on).</summary>
    public void ConcatForward(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int outer, int sizeA, int sizeB)
    {
        long n = (long)outer * (sizeA + sizeB);
        Need(y, n, nameof(y)); Need(a, (long)outer * sizeA, nameof(a)); Need(b, (long)outer * sizeB, nameof(b));
        _concat ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(ConcatKernel);
        Launched(); _concat(checked((int)n), y, a, b, sizeA, sizeB);
    }

    /// <summary>da += dy's first A of each row, db += the rest (either empty: not needed). One launch.</summary>
    public void ConcatBackward(ArrayView<float> da, ArrayView<float> db, ArrayView<float> dy, int outer, int sizeA, int sizeB)
    {
        long n = (long)outer * (sizeA + sizeB);
        Need(dy, n, nameof(dy));
        if (da.Length == 0 && db.Length == 0) return;
        if (da.Length > 0) Need(da, (long)outer * sizeA, nameof(da));
        if (db.Length > 0) Need(db, (long)outer * sizeB, nameof(db));
        _concatBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(ConcatBackwardKernel);
        // A view that is not wanted is never passed empty: the flags say which to write.
        Launched(); _concatBackward(checked((int)n), da.Length > 0 ? da : dy, db.Length > 0 ? db : dy, dy, sizeA, sizeB, (da.Length > 0 ? 1 : 0) | (db.Length > 0 ? 2 : 0));
    }

    private static void ConcatKernel(Index1D index, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int sizeA, int sizeB)
    {
        int width = sizeA + sizeB;
        long o = index / width;
        int j = (int)(index % width);
        y[index] = j < sizeA ? a[o * sizeA + j] : b[o * sizeB + j - sizeA];
    }

    private static void ConcatBackwardKernel(Index1D index, ArrayView<float> da, ArrayView<float> db, ArrayView<float> dy, int sizeA, int sizeB, int want)
    {
        int width = sizeA + sizeB;
        long o = index / width;
        int j = (int)(index % width);
        if (j < sizeA) { if ((want & 1) != 0) da[o * sizeA + j] += dy[index]; }
        else if ((want & 2) != 0) db[o * sizeB + j - sizeA] += dy[index];
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>? _narrow, _narrowBackward;

    /// <summary>y[o, :yBlock] = x[o, offset : offset + yBlock] for o &lt; outer (Narrow, a Chunk/Split piece).</summary>
    public void NarrowForward(ArrayView<float> y, ArrayView<float> x, int outer, int xBlock, int offset, int yBlock)
    {
        Need(y, (long)outer * yBlock, nameof(y)); Need(x, (long)outer * xBlock, nameof(x));
        _narrow ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(NarrowKernel);
        Launched(); _narrow(checked(outer * yBlock), y, x, xBlock, offset, yBlock);
    }

    /// <summary>dx[o, offset : offset + yBlock] += dy[o, :] (each dx element written by one thread at most: no atomics).</summary>
    public void NarrowBackward(ArrayView<float> dx, ArrayView<float> dy, int outer, int xBlock, int offset, int yBlock)
    {
        Need(dy, (long)outer * yBlock, nameof(dy)); Need(dx, (long)outer * xBlock, nameof(dx));
        _narrowBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(NarrowBackwardKernel);
        Launched(); _narrowBackward(checked(outer * yBlock), dx, dy, xBlock, offset, yBlock);
    }

    private static void NarrowKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, int xBlock, int offset, int yBlock)
    {
        int i = index;
        y[i] = x[(long)(i / yBlock) * xBlock + offset + i % yBlock];
    }

    private static void NarrowBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, int xBlock, int offset, int yBlock)
    {
        int i = index;
        dx[(long)(i / yBlock) * xBlock + offset + i % yBlock] += dy[i];
    }
}
