using System.Runtime.InteropServices;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>
/// The batched cuBLAS path without a GPU: <see cref="CuBlasBatched"/> calls entry points with cuBLAS's C signatures,
/// here ones written from BLAS's definition of the two batched SGEMMs that read the CPU accelerator's memory (whose
/// device addresses are host addresses: so these tests take the CPU accelerator even where the others take a GPU).
/// Everything but cuBLAS itself runs — the operands' swap, strides, the address
/// tables' layout and byte offsets, alpha and beta by pointer, the handle — against the CPU runtime's GEMM per product.
/// </summary>
public sealed unsafe class CuBlasBatchedTests(CpuAcceleratorFixture f) : IClassFixture<CpuAcceleratorFixture>
{
    private const nint Handle = 0x5eed;
    private static int s_stridedCalls, s_pointerCalls;
    private static bool s_ignoreAlpha;

    /// <summary>One product as BLAS defines it (<see cref="CuBlasMappingTests.ColumnMajorSgemm"/>) over the matrices at
    /// these addresses, each as long as its column-major extent.</summary>
    private static void ColumnMajor(int ta, int tb, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc) =>
        CuBlasMappingTests.ColumnMajorSgemm(ta != 0, tb != 0, m, n, k, s_ignoreAlpha ? 1f : alpha,
            new ReadOnlySpan<float>(a, ta != 0 ? (m - 1) * lda + k : (k - 1) * lda + m), lda,
            new ReadOnlySpan<float>(b, tb != 0 ? (k - 1) * ldb + n : (n - 1) * ldb + k), ldb, beta, new Span<float>(c, (n - 1) * ldc + m), ldc);

    [UnmanagedCallersOnly]
    private static int Strided(nint handle, int ta, int tb, int m, int n, int k, float* alpha, nint a, int lda, long sa, nint b, int ldb, long sb,
        float* beta, nint c, int ldc, long sc, int count)
    {
        if (handle != Handle) return 1; // CUBLAS_STATUS_NOT_INITIALIZED
        Interlocked.Increment(ref s_stridedCalls);
        for (int p = 0; p < count; p++)
            ColumnMajor(ta, tb, m, n, k, *alpha, (float*)a + p * sa, lda, (float*)b + p * sb, ldb, *beta, (float*)c + p * sc, ldc);
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int Pointers(nint handle, int ta, int tb, int m, int n, int k, float* alpha, nint a, int lda, nint b, int ldb, float* beta, nint c, int ldc, int count)
    {
        if (handle != Handle) return 1;
        Interlocked.Increment(ref s_pointerCalls);
        for (int p = 0; p < count; p++)
            ColumnMajor(ta, tb, m, n, k, *alpha, ((float**)a)[p], lda, ((float**)b)[p], ldb, *beta, ((float**)c)[p], ldc);
        return 0;
    }

    private static BatchedEntries Entries => new((nint)(delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)&Strided,
        (nint)(delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int, int>)&Pointers);

    private CuBlasBatched.ReferenceBatched Tiled => (args, strides, count, a, b, c) => f.Device.Kernels.GemmBatchedTiled(a, b, c, args, strides, count);

    [Fact]
    public void The_self_check_passes_a_faithful_binding_and_fails_one_that_drops_alpha()
    {
        using var faithful = new CuBlasBatched(Handle, Entries, f.Device.Accelerator);
        Assert.True(faithful.AgreesWith(Tiled, out string why), why);
        using var wrongHandle = new CuBlasBatched(Handle + 1, Entries, f.Device.Accelerator);
        Assert.False(wrongHandle.AgreesWith(Tiled, out why));
        Assert.Contains("failed with status 1", why);
        s_ignoreAlpha = true;
        try
        {
            using var broken = new CuBlasBatched(Handle, Entries, f.Device.Accelerator);
            Assert.False(broken.AgreesWith(Tiled, out why));
            Assert.Contains("disagreed with the tiled kernel", why);
        }
        finally { s_ignoreAlpha = false; }
    }

    /// <summary>Attention's products over [B, T, E] with heads as column blocks (QKᵀ, P·V, P̃ᵀ·dctx), one cuBLAS call each
    /// through an address table built once per call site, as the CPU's GEMM gives them product by product.</summary>
    [Theory]
    [InlineData(false, true, 7, 7, 4)]   // scores = Q·Kᵀ over [B, T, E]
    [InlineData(false, false, 7, 4, 7)]  // ctx = P·V, P in [B, H, T, T]
    [InlineData(true, false, 7, 4, 7)]   // dV = Pᵀ·dctx
    public void Per_head_products_match_the_CPU_gemm_through_one_table_per_call_site(bool ta, bool tb, int m, int n, int k)
    {
        const int batch = 2, heads = 3, t = 7, d = 4, e = heads * d;
        // Operands in [B, T, E] are column blocks (head stride D, sample stride T·E); [B, H, T, T] ones are whole blocks.
        (int Ld, long Sample, long Head) Layout(int cols) => cols == d ? (e, (long)t * e, d) : (t, (long)heads * t * t, (long)t * t);
        var (lda, aSample, aHead) = Layout(ta ? m : k);
        var (ldb, bSample, bHead) = Layout(tb ? k : n);
        var (ldc, cSample, cHead) = Layout(n);
        var args = new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = ta ? 1 : 0, TransB = tb ? 1 : 0, Alpha = 0.5f };
        var strides = new BatchStrides { A = aSample, B = bSample, C = cSample, AHead = aHead, BHead = bHead, CHead = cHead, Heads = heads };
        var a = DeviceFixture.Random((int)(batch * aSample), 1); var b = DeviceFixture.Random((int)(batch * bSample), 2);
        var expected = new float[batch * cSample];
        for (int p = 0; p < batch * heads; p++)
            Gemm.Sgemm(ta, tb, m, n, k, 0.5f, a.AsSpan((int)strides.OffsetA(p)), lda, b.AsSpan((int)strides.OffsetB(p)), ldb, 0f, expected.AsSpan((int)strides.OffsetC(p)), ldc);

        using var batched = new CuBlasBatched(Handle, Entries, f.Device.Accelerator);
        using var da = f.Upload(a); using var db = f.Upload(b);
        using var dc = f.Upload(Enumerable.Repeat(float.NaN, expected.Length).ToArray()); // beta 0: C is never read
        int pointerCalls = s_pointerCalls;
        batched.Gemm(args, strides, batch * heads, da.View, db.View, dc.View);
        DeviceFixture.Close(expected, DeviceFixture.Download(dc, expected.Length), 1e-5f, "C");
        batched.Gemm(args, strides, batch * heads, da.View, db.View, dc.View);
        Assert.Equal(1, batched.TablesBuilt);
        // A call site's later calls find its table without allocating (they run every training step).
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() => batched.Gemm(args, strides, batch * heads, da.View, db.View, dc.View)));
        Assert.True(s_pointerCalls >= pointerCalls + 2);
        // Another call site (C elsewhere) gets a table of its own.
        using var other = f.Upload(new float[expected.Length]);
        batched.Gemm(args, strides, batch * heads, da.View, db.View, other.View);
        Assert.Equal(2, batched.TablesBuilt);
        DeviceFixture.Close(expected, DeviceFixture.Download(other, expected.Length), 1e-5f, "C elsewhere");
    }

    /// <summary>A plain batch (grouped convolutions, MatMul over samples) with beta: one strided call, no table.</summary>
    [Fact]
    public void A_plain_batch_with_beta_is_one_strided_call()
    {
        const int count = 3, m = 6, n = 5, k = 9;
        var args = new GemmArgs { M = m, N = n, K = k, Lda = m, Ldb = k, Ldc = n, TransA = 1, TransB = 1, Alpha = 0.75f, Beta = 0.5f };
        var strides = new BatchStrides { A = k * m + 2, B = n * k + 1, C = m * n + 3, Heads = 1 };
        var a = DeviceFixture.Random(count * (int)strides.A, 4); var b = DeviceFixture.Random(count * (int)strides.B, 5); var c = DeviceFixture.Random(count * (int)strides.C, 6);
        var expected = (float[])c.Clone();
        for (int p = 0; p < count; p++)
            Gemm.Sgemm(true, true, m, n, k, 0.75f, a.AsSpan((int)(p * strides.A)), m, b.AsSpan((int)(p * strides.B)), k, 0.5f, expected.AsSpan((int)(p * strides.C)), n);
        using var batched = new CuBlasBatched(Handle, Entries, f.Device.Accelerator);
        using var da = f.Upload(a); using var db = f.Upload(b); using var dc = f.Upload(c);
        int stridedCalls = s_stridedCalls;
        batched.Gemm(args, strides, count, da.View, db.View, dc.View);
        Assert.True(s_stridedCalls > stridedCalls);
        Assert.Equal(0, batched.TablesBuilt);
        DeviceFixture.Close(expected, DeviceFixture.Download(dc, c.Length), 1e-5f, "C");
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() => batched.Gemm(args, strides, count, da.View, db.View, dc.View)));
    }
}
