using System.Collections.Concurrent;
using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>? _broadcast;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>? _broadcastBackward;
    private readonly ConcurrentDictionary<string, MemoryBuffer1D<int, Stride1D.Dense>> _layouts = new();

    /// <summary>y = a − b or a·b over batch × <paramref name="outShape"/>, each operand broadcast as in PyTorch (its
    /// dimensions align with the result's last ones; size 1 or missing dimensions repeat). The per-sample layout is
    /// uploaded once per shape triple and cached on the device.</summary>
    public void BroadcastForward(BinaryOp op, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int batch, int[] outShape, int[] aShape, int[] bShape)
    {
        long n = batch * Product(outShape);
        Need(y, n, nameof(y)); Need(a, batch * Product(aShape), nameof(a)); Need(b, batch * Product(bShape), nameof(b));
        _broadcast ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(BroadcastKernel);
        Launched(); _broadcast(checked((int)n), y, a, b, Layout(outShape, aShape, bShape), op == BinaryOp.Multiply ? 1 : 0);
    }

    /// <summary>da += ∂/∂a·dy and db += ∂/∂b·dy, summed over where each was broadcast (atomic adds); either gradient
    /// empty: not needed. One launch.</summary>
    public void BroadcastBackward(BinaryOp op, ArrayView<float> da, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> a, ArrayView<float> b, int batch,
        int[] outShape, int[] aShape, int[] bShape)
    {
        long n = batch * Product(outShape);
        Need(dy, n, nameof(dy));
        if (da.Length == 0 && db.Length == 0) return;
        _broadcastBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(BroadcastBackwardKernel);
        int flags = (op == BinaryOp.Multiply ? 1 : 0) | (da.Length > 0 ? 2 : 0) | (db.Length > 0 ? 4 : 0);
        // A view that is not wanted is never passed empty: the flags say which to write.
        Launched(); _broadcastBackward(checked((int)n), da.Length > 0 ? da : dy, db.Length > 0 ? db : dy, dy, a, b, Layout(outShape, aShape, bShape), flags);
    }

    private static long Product(int[] shape) { long p = 1; foreach (int d in shape) p *= d; return p; }

    /// <summary>[rank, per-sample sizes of a and b, sizes of the result…, a's strides…, b's strides…] (stride 0 where
    /// broadcast), per sample; the batch steps by each operand's per-sample size.</summary>
    private ArrayView<int> Layout(int[] outShape, int[] aShape, int[] bShape)
    {
        string key = string.Join(",", outShape) + "|" + string.Join(",", aShape) + "|" + string.Join(",", bShape);
        return _layouts.GetOrAdd(key, _ =>
        {
            int rank = outShape.Length;
            var l = new int[3 + 3 * rank];
            l[0] = rank; l[1] = (int)Product(aShape); l[2] = (int)Product(bShape);
            for (int d = 0; d < rank; d++) l[3 + d] = outShape[d];
            Strides(outShape, aShape, l.AsSpan(3 + rank, rank));
            Strides(outShape, bShape, l.AsSpan(3 + 2 * rank, rank));
            var buffer = Accelerator.Allocate1D(l);
            return buffer;
        }).View;
    }

    private static void Strides(int[] outShape, int[] shape, Span<int> stride)
    {
        int offset = outShape.Length - shape.Length, s = 1;
        if (offset < 0) throw new ArgumentException($"An operand has more dimensions ({shape.Length}) than the result ({outShape.Length}).");
        for (int d = outShape.Length - 1; d >= 0; d--)
        {
            int k = d - offset, n = k >= 0 ? shape[k] : 1;
            if (n != outShape[d] && n != 1) throw new ArgumentException($"Dimension {k} of an operand is {n}, which does not broadcast to {outShape[d]}.");
            stride[d] = n == 1 ? 0 : s;
            s *= n;
        }
    }

    /// <summary>Each operand's element for output element <paramref name="index"/>.</summary>
    private static void Offsets(long index, ArrayView<int> l, out long ia, out long ib)
    {
        int rank = l[0];
        long perSample = 1;
        for (int d = 0; d < rank; d++) perSample *= l[3 + d];
        long b = index / perSample, rest = index % perSample;
        ia = b * l[1]; ib = b * l[2];
        for (int d = rank - 1; d >= 0; d--)
        {
            int size = l[3 + d];
            long i = rest % size;
            rest /= size;
            ia += i * l[3 + rank + d];
            ib += i * l[3 + 2 * rank + d];
        }
    }

    private static void BroadcastKernel(Index1D index, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, ArrayView<int> l, int multiply)
    {
        Offsets(index.X, l, out long ia, out long ib);
        y[index] = multiply != 0 ? a[ia] * b[ib] : a[ia] - b[ib];
    }

    private static void BroadcastBackwardKernel(Index1D index, ArrayView<float> da, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> a, ArrayView<float> b,
        ArrayView<int> l, int flags)
    {
        Offsets(index.X, l, out long ia, out long ib);
        float g = dy[index];
        bool multiply = (flags & 1) != 0;
        if ((flags & 2) != 0) Atomic.Add(ref da[ia], multiply ? g * b[ib] : g);
        if ((flags & 4) != 0) Atomic.Add(ref db[ib], multiply ? g * a[ia] : -g);
    }
}
