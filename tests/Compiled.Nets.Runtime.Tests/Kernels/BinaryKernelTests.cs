using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Broadcasting a − b and a · b against a brute-force double-precision reference: outputs, and both sides'
/// gradients summed over the dimensions each was broadcast along.</summary>
public class BinaryKernelTests
{
    public static TheoryData<int[], int[], int[]> Shapes() => new()
    {
        { [3, 4, 5], [3, 4, 5], [3, 4, 5] },   // equal: the flat fast path
        { [4, 5, 6], [4, 1, 1], [4, 5, 6] },   // per-channel gate
        { [4, 1, 1], [4, 5, 6], [4, 5, 6] },   // gate on the left
        { [5, 8], [8], [5, 8] },               // fewer dimensions on the right
        { [1, 7], [3, 1], [3, 7] },            // both sides broadcast
        { [2, 3, 17], [2, 1, 17], [2, 3, 17] }, // broadcast in the middle, rows of 17 (vector body and tail)
        { [6, 1], [6, 5], [6, 5] },            // a broadcast along the row
    };

    private static int[] Pad(int[] shape, int rank) => [.. Enumerable.Repeat(1, rank - shape.Length), .. shape];

    /// <summary>The flat index into an operand of (padded) <paramref name="shape"/> for output coordinates <paramref name="at"/>.</summary>
    private static int Index(int[] shape, int[] at)
    {
        int index = 0;
        for (int d = 0; d < shape.Length; d++) index = index * shape[d] + (shape[d] == 1 ? 0 : at[d]);
        return index;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardAndBackward_MatchABruteForceReferenceInDouble(int[] aShape, int[] bShape, int[] outShape)
    {
        const int batch = 2;
        int rank = outShape.Length;
        int[] pa = [batch, .. Pad(aShape, rank)], pb = [batch, .. Pad(bShape, rank)], po = [batch, .. outShape];
        int na = pa.Aggregate(1, (p, d) => p * d), nb = pb.Aggregate(1, (p, d) => p * d), n = po.Aggregate(1, (p, d) => p * d);
        var r = new Rng(17);
        float[] a = Enumerable.Range(0, na).Select(_ => r.NextFloat() * 2 - 1).ToArray(), b = Enumerable.Range(0, nb).Select(_ => r.NextFloat() * 2 - 1).ToArray();
        float[] dy = Enumerable.Range(0, n).Select(_ => r.NextFloat() * 2 - 1).ToArray();

        foreach (var op in new[] { BinaryOp.Subtract, BinaryOp.Multiply })
        {
            var y = new float[n];
            BinaryKernels.Forward(op, y, a, b, batch, outShape, aShape, bShape);
            float[] da = Enumerable.Repeat(0.5f, na).ToArray(), db = Enumerable.Repeat(-0.5f, nb).ToArray();
            BinaryKernels.Backward(op, da, db, dy, a, b, batch, outShape, aShape, bShape);

            var expectedDa = new double[na]; var expectedDb = new double[nb];
            var at = new int[po.Length];
            for (int i = 0; i < n; i++)
            {
                for (int d = po.Length - 1, rest = i; d >= 0; d--) { at[d] = rest % po[d]; rest /= po[d]; }
                int ia = Index(pa, at), ib = Index(pb, at);
                double av = a[ia], bv = b[ib];
                double expected = op == BinaryOp.Subtract ? av - bv : av * bv;
                Assert.True(Math.Abs(expected - y[i]) < 1e-6, $"{op} y[{i}] = {y[i]}, expected {expected}");
                expectedDa[ia] += op == BinaryOp.Subtract ? dy[i] : dy[i] * bv;
                expectedDb[ib] += op == BinaryOp.Subtract ? -dy[i] : dy[i] * av;
            }
            for (int i = 0; i < na; i++) Assert.True(Math.Abs(0.5 + expectedDa[i] - da[i]) < 1e-5, $"{op} da[{i}] = {da[i]}, expected {0.5 + expectedDa[i]}");
            for (int i = 0; i < nb; i++) Assert.True(Math.Abs(-0.5 + expectedDb[i] - db[i]) < 1e-5, $"{op} db[{i}] = {db[i]}, expected {-0.5 + expectedDb[i]}");
        }
    }

    [Fact]
    public void Backward_SkipsAnEmptySide_AndShapesThatDoNotBroadcastAreRefused()
    {
        var y = new float[2 * 4]; var dy = Enumerable.Repeat(1f, 8).ToArray();
        var db = new float[2];
        BinaryKernels.Backward(BinaryOp.Multiply, default, db, dy, Enumerable.Repeat(2f, 8).ToArray(), new float[2], 2, [4], [4], [1]);
        Assert.Equal([8f, 8f], db);
        Assert.Throws<ArgumentException>(() => BinaryKernels.Forward(BinaryOp.Subtract, y, new float[8], new float[6], 2, [4], [4], [3]));
        var e = Assert.Throws<ArgumentException>(() => new Tensor(new float[12], 2, 3, 2) * new Tensor(new float[8], 2, 4));
        Assert.Contains("per-sample shapes do not broadcast", e.Message);
        Assert.Contains("same batch", Assert.Throws<ArgumentException>(() => new Tensor(new float[6], 2, 3) - new Tensor(new float[3], 1, 3)).Message);
        // The batch stays first: [2, 3, 2] · [2, 2] pairs each sample's [3, 2] with its own [2], not with the batch.
        var gated = new Tensor([1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1], 2, 3, 2) * new Tensor([10, 100, 2, 3], 2, 2);
        Assert.Equal(new float[] { 10, 200, 30, 400, 50, 600, 2, 3, 2, 3, 2, 3 }, gated.Data);
    }
}
