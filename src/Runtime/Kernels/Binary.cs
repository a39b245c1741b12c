using System.Numerics.Tensors;

namespace Compiled.Nets.Kernels;

/// <summary>The elementwise binary ops with broadcasting.</summary>
public enum BinaryOp
{
    /// <summary>a − b.</summary>
    Subtract,
    /// <summary>a · b.</summary>
    Multiply,
}

/// <summary>
/// a − b and a · b with NumPy/PyTorch broadcasting: shapes aligned from the right, each dimension equal or 1 on one
/// side. Shapes are per sample, the batch comes first on all three (equal). Rows of the last dimension run through
/// TensorPrimitives (vector against vector, or vector against one broadcast value); an odometer walks the rest.
/// Backward accumulates, reducing over the dimensions an operand was broadcast along.
/// </summary>
public static class BinaryKernels
{
    // Up to 8 per-sample dimensions (plus the batch): enough for every shape the generator emits, on the stack.
    private const int MaxRank = 9;

    /// <summary>Per dimension of the output (batch first): its size and each operand's stride (0 where broadcast).</summary>
    private ref struct Layout
    {
        public Span<int> Size, StrideA, StrideB;
        public int Rank, Rows, Cols;
    }

    private static Layout Lay(int batch, ReadOnlySpan<int> outShape, ReadOnlySpan<int> aShape, ReadOnlySpan<int> bShape, Span<int> buffer)
    {
        int rank = outShape.Length + 1;
        if (rank > MaxRank) throw new ArgumentException($"Broadcasting supports up to {MaxRank - 1} dimensions per sample, got {outShape.Length}.");
        var l = new Layout { Size = buffer.Slice(0, rank), StrideA = buffer.Slice(MaxRank, rank), StrideB = buffer.Slice(2 * MaxRank, rank), Rank = rank };
        l.Size[0] = batch;
        for (int d = 0; d < outShape.Length; d++) l.Size[d + 1] = outShape[d];
        Strides(l.Size, aShape, l.StrideA, "left");
        Strides(l.Size, bShape, l.StrideB, "right");
        l.Cols = l.Size[rank - 1];
        l.Rows = 1;
        for (int d = 0; d < rank - 1; d++) l.Rows *= l.Size[d];
        return l;
    }

    private static void Strides(ReadOnlySpan<int> size, ReadOnlySpan<int> shape, Span<int> stride, string side)
    {
        // The operand's dims align with the output's last ones; its missing leading dims (after the batch) broadcast.
        int offset = size.Length - 1 - shape.Length;
        if (offset < 0) throw new ArgumentException($"The {side} operand has more dimensions ({shape.Length}) than the result ({size.Length - 1}).");
        int s = 1;
        for (int d = size.Length - 1; d >= 1; d--)
        {
            int k = d - 1 - offset;
            int n = k >= 0 ? shape[k] : 1;
            if (n != size[d] && n != 1) throw new ArgumentException($"The {side} operand's dimension {k} is {n}, which does not broadcast to {size[d]}.");
            stride[d] = n == 1 ? 0 : s;
            s *= n;
        }
        stride[0] = s; // the batch is never broadcast
    }

    /// <summary>The start of each operand's data for output row <paramref name="row"/> (all dims but the last).</summary>
    private static (int A, int B) RowStart(in Layout l, int row)
    {
        int a = 0, b = 0;
        for (int d = l.Rank - 2; d >= 0; d--)
        {
            int i = row % l.Size[d];
            row /= l.Size[d];
            a += i * l.StrideA[d];
            b += i * l.StrideB[d];
        }
        return (a, b);
    }

    /// <summary>y = a op b over batch × <paramref name="outShape"/>.</summary>
    public static void Forward(BinaryOp op, Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int batch,
        ReadOnlySpan<int> outShape, ReadOnlySpan<int> aShape, ReadOnlySpan<int> bShape)
    {
        if (aShape.SequenceEqual(bShape) && aShape.SequenceEqual(outShape))
        {
            int n = batch * Product(outShape);
            if (op == BinaryOp.Subtract) TensorPrimitives.Subtract(a.Slice(0, n), b.Slice(0, n), y.Slice(0, n));
            else TensorPrimitives.Multiply(a.Slice(0, n), b.Slice(0, n), y.Slice(0, n));
            return;
        }
        Span<int> buffer = stackalloc int[3 * MaxRank];
        var l = Lay(batch, outShape, aShape, bShape, buffer);
        int ca = l.StrideA[l.Rank - 1], cb = l.StrideB[l.Rank - 1];
        for (int r = 0; r < l.Rows; r++)
        {
            var (ia, ib) = RowStart(l, r);
            var dst = y.Slice(r * l.Cols, l.Cols);
            if (ca == 1 && cb == 1)
            {
                if (op == BinaryOp.Subtract) TensorPrimitives.Subtract(a.Slice(ia, l.Cols), b.Slice(ib, l.Cols), dst);
                else TensorPrimitives.Multiply(a.Slice(ia, l.Cols), b.Slice(ib, l.Cols), dst);
            }
            else if (ca == 1)
            {
                if (op == BinaryOp.Subtract) TensorPrimitives.Subtract(a.Slice(ia, l.Cols), b[ib], dst);
                else TensorPrimitives.Multiply(a.Slice(ia, l.Cols), b[ib], dst);
            }
            else if (cb == 1)
            {
                if (op == BinaryOp.Subtract) TensorPrimitives.Subtract(a[ia], b.Slice(ib, l.Cols), dst);
                else TensorPrimitives.Multiply(b.Slice(ib, l.Cols), a[ia], dst);
            }
            else dst.Fill(op == BinaryOp.Subtract ? a[ia] - b[ib] : a[ia] * b[ib]);
        }
    }

    /// <summary>
    /// da += ∂(a op b)/∂a · dy and db += ∂/∂b · dy, each summed over the dimensions its operand was broadcast along
    /// (an empty span skips that side). Multiply reads both operands.
    /// </summary>
    public static void Backward(BinaryOp op, Span<float> da, Span<float> db, ReadOnlySpan<float> dy, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int batch,
        ReadOnlySpan<int> outShape, ReadOnlySpan<int> aShape, ReadOnlySpan<int> bShape)
    {
        Span<int> buffer = stackalloc int[3 * MaxRank];
        var l = Lay(batch, outShape, aShape, bShape, buffer);
        int ca = l.StrideA[l.Rank - 1], cb = l.StrideB[l.Rank - 1];
        for (int r = 0; r < l.Rows; r++)
        {
            var (ia, ib) = RowStart(l, r);
            var g = dy.Slice(r * l.Cols, l.Cols);
            if (!da.IsEmpty)
            {
                // ∂/∂a: 1 for both ops' a, times b for multiply.
                if (op == BinaryOp.Subtract) Accumulate(da, ia, ca, g, default, 0f, false);
                else Accumulate(da, ia, ca, g, cb == 1 ? b.Slice(ib, l.Cols) : default, b[ib], true);
            }
            if (!db.IsEmpty)
            {
                if (op == BinaryOp.Subtract) Accumulate(db, ib, cb, g, default, -1f, true);
                else Accumulate(db, ib, cb, g, ca == 1 ? a.Slice(ia, l.Cols) : default, a[ia], true);
            }
        }
    }

    /// <summary>dst[start..] += g · (other row, or the scalar when the row is empty), summed into one value where the
    /// destination is broadcast along the row (<paramref name="stride"/> 0). Without <paramref name="scaled"/>, + g.</summary>
    private static void Accumulate(Span<float> dst, int start, int stride, ReadOnlySpan<float> g, ReadOnlySpan<float> other, float scalar, bool scaled)
    {
        if (stride == 1)
        {
            var d = dst.Slice(start, g.Length);
            if (!scaled) TensorPrimitives.Add(d, g, d);
            else if (!other.IsEmpty) TensorPrimitives.FusedMultiplyAdd(g, other, d, d);
            else TensorPrimitives.FusedMultiplyAdd(g, scalar, d, d);
        }
        else
        {
            float sum = !scaled ? TensorPrimitives.Sum(g) : !other.IsEmpty ? TensorPrimitives.Dot(g, other) : scalar * TensorPrimitives.Sum(g);
            dst[start] += sum;
        }
    }

    private static int Product(ReadOnlySpan<int> shape)
    {
        int n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}
