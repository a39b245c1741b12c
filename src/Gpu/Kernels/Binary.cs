using System.Collections.Concurrent;
using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>? _broadcast;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>? _broadcastBackward;
    private readonly ConcurrentDictionary<string, MemoryBuffer1D<int, Stride1D.Dense>> _layouts = new();

    /// <summary>y = a − b or a·b over batch × <paramref name="outShape"/>, each operand broadcast as in PyTorch (its
    /// dimensions align with the result's last ones; size 1 or missing dimensions repeat). The per-sample layout is
    /// uploaded once per shape triple and cached on the device. Along a sequence the batch is B·T and an operand that
    /// does not run along T repeats over each sample's T rows: its <paramref name="repeatA"/> (or B) is T, else 1.</summary>
    public void BroadcastForward(BinaryOp op, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int batch, int[] outShape, int[] aShape, int[] bShape,
        int repeatA = 1, int repeatB = 1)
    {
        long n = batch * Product(outShape);
        Need(y, n, nameof(y)); Need(a, batch / repeatA * Product(aShape), nameof(a)); Need(b, batch / repeatB * Product(bShape), nameof(b));
        _broadcast ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(BroadcastKernel);
        Launched(); _broadcast(checked((int)n), y, a, b, Layout(outShape, aShape, bShape), Flags(op, repeatA, repeatB));
    }

    /// <summary>The kernels' flags word: bit 0 multiply, bit 2 the gradient of b (backward), the two repeats above.</summary>
    private static int Flags(BinaryOp op, int repeatA, int repeatB)
    {
        if (repeatA < 1 || repeatB < 1 || repeatA > 0x3FFF || repeatB > 0x3FFF) throw new ArgumentOutOfRangeException(nameof(repeatA), "Repeats are in [1, 16383].");
        return (op == BinaryOp.Multiply ? 1 : 0) | repeatA << 3 | repeatB << 17;
    }

    /// <summary>da += ∂/∂a·dy and db += ∂/∂b·dy, summed over where each was broadcast; either gradient empty: not
    /// needed. One launch per gradient: a thread per operand element gathers its terms in order (no atomics, so the
    /// same bits every run, and no thousands of threads adding into one element).</summary>
    public void BroadcastBackward(BinaryOp op, ArrayView<float> da, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> a, ArrayView<float> b, int batch,
        int[] outShape, int[] aShape, int[] bShape, int repeatA = 1, int repeatB = 1)
    {
        long n = batch * Product(outShape);
        Need(dy, n, nameof(dy));
        if (da.Length == 0 && db.Length == 0) return;
        _broadcastBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(BroadcastGatherKernel);
        int flags = Flags(op, repeatA, repeatB);
        var layout = Layout(outShape, aShape, bShape);
        if (da.Length > 0)
        {
            long count = batch / repeatA * Product(aShape);
            Need(da, count, nameof(da));
            Launched(); _broadcastBackward(checked((int)count), da, dy, a, b, layout, flags, batch);
        }
        if (db.Length > 0)
        {
            long count = batch / repeatB * Product(bShape);
            Need(db, count, nameof(db));
            Launched(); _broadcastBackward(checked((int)count), db, dy, a, b, layout, flags | 4, batch);
        }
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
    private static void Offsets(long index, ArrayView<int> l, int flags, out long ia, out long ib)
    {
        int rank = l[0];
        long perSample = 1;
        for (int d = 0; d < rank; d++) perSample *= l[3 + d];
        long b = index / perSample, rest = index % perSample;
        ia = b / (flags >> 3 & 0x3FFF) * l[1]; ib = b / (flags >> 17 & 0x3FFF) * l[2];
        for (int d = rank - 1; d >= 0; d--)
        {
            int size = l[3 + d];
            long i = rest % size;
            rest /= size;
            ia += i * l[3 + rank + d];
            ib += i * l[3 + 2 * rank + d];
        }
    }

    private static void BroadcastKernel(Index1D index, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, ArrayView<int> l, int flags)
    {
        Offsets(index.X, l, flags, out long ia, out long ib);
        y[index] = (flags & 1) != 0 ? a[ia] * b[ib] : a[ia] - b[ib];
    }

    /// <summary>Element <paramref name="index"/> of the operand whose gradient <paramref name="d"/> is (b's when flag bit 2
    /// is set, else a's): the sum of its terms over every output element it was broadcast to — over the samples that
    /// share it, then over its broadcast dimensions, innermost last.</summary>
    private static void BroadcastGatherKernel(Index1D index, ArrayView<float> d, ArrayView<float> dy, ArrayView<float> a, ArrayView<float> b,
        ArrayView<int> l, int flags, int batch)
    {
        int rank = l[0], operand = (flags & 4) != 0 ? 1 : 0, strides = 3 + (1 + operand) * rank;
        int size = l[1 + operand], repeat = operand == 0 ? flags >> 3 & 0x3FFF : flags >> 17 & 0x3FFF;
        long sample = index / size;
        int rest = (int)(index % size);
        // The output offset (within a sample) of this element's own coordinates, and how many places it spreads to.
        long fixedOffset = 0, spread = 1, perSample = 1;
        for (int k = rank - 1; k >= 0; k--)
        {
            int n = l[3 + k], stride = l[strides + k];
            if (stride != 0) fixedOffset += rest / stride % n * perSample;
            else spread *= n;
            perSample *= n;
        }
        bool multiply = (flags & 1) != 0;
        long last = (sample + 1) * repeat < batch ? (sample + 1) * repeat : batch;
        float s = 0f;
        for (long ob = sample * repeat; ob < last; ob++)
            for (long q = 0; q < spread; q++)
            {
                long left = q, offset = fixedOffset, step = 1;
                for (int k = rank - 1; k >= 0; k--)
                {
                    int n = l[3 + k];
                    if (l[strides + k] == 0) { offset += left % n * step; left /= n; }
                    step *= n;
                }
                long o = ob * perSample + offset;
                float g = dy[o];
                if (multiply)
                {
                    Offsets(o, l, flags, out long ia, out long ib);
                    g *= operand == 0 ? b[ib] : a[ia];
                }
                else if (operand == 1) g = -g;
                s += g;
            }
        d[index] += s;
    }
}
