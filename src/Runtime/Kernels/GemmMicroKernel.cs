using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// The register-blocked core of Gemm: a 6×64 tile of C kept in 24 Vector512 accumulators while k runs over packed
// panels (A: 6 values per k, B: 64 values per k). Generated once by a script for regularity; edit with care.
internal static unsafe class GemmMicroKernel
{
    public const int MR = 6, NR = 64;

    /// <summary>
    /// c[0..6, 0..64] = beta·c + Σ_p a[p, 0..6]ᵀ · b[p, 0..64] (c has row stride ldc). beta = 1 accumulates (later
    /// k-slices), beta = 0 overwrites without reading c (the first slice of a beta = 0 GEMM), so C needs no separate
    /// scaling sweep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x64(float* a, float* b, int kc, float* c, long ldc, float beta)
    {
        Vector512<float> c00 = Vector512<float>.Zero;
        Vector512<float> c01 = Vector512<float>.Zero;
        Vector512<float> c02 = Vector512<float>.Zero;
        Vector512<float> c03 = Vector512<float>.Zero;
        Vector512<float> c10 = Vector512<float>.Zero;
        Vector512<float> c11 = Vector512<float>.Zero;
        Vector512<float> c12 = Vector512<float>.Zero;
        Vector512<float> c13 = Vector512<float>.Zero;
        Vector512<float> c20 = Vector512<float>.Zero;
        Vector512<float> c21 = Vector512<float>.Zero;
        Vector512<float> c22 = Vector512<float>.Zero;
        Vector512<float> c23 = Vector512<float>.Zero;
        Vector512<float> c30 = Vector512<float>.Zero;
        Vector512<float> c31 = Vector512<float>.Zero;
        Vector512<float> c32 = Vector512<float>.Zero;
        Vector512<float> c33 = Vector512<float>.Zero;
        Vector512<float> c40 = Vector512<float>.Zero;
        Vector512<float> c41 = Vector512<float>.Zero;
        Vector512<float> c42 = Vector512<float>.Zero;
        Vector512<float> c43 = Vector512<float>.Zero;
        Vector512<float> c50 = Vector512<float>.Zero;
        Vector512<float> c51 = Vector512<float>.Zero;
        Vector512<float> c52 = Vector512<float>.Zero;
        Vector512<float> c53 = Vector512<float>.Zero;
        // Pointers bumped instead of indexed (no multiplies in the loop), k unrolled by two.
        float* aEnd2 = a + 6 * (kc & ~1);
        for (; a < aEnd2; a += 12, b += 128)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var b2 = Vector512.Load(b + 32);
            var b3 = Vector512.Load(b + 48);
            var a0 = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
            var a1 = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
            c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
            var a2 = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
            c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
            var a3 = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
            c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
            var a4 = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a4, b2, c42);
            c43 = Vector512.FusedMultiplyAdd(a4, b3, c43);
            var a5 = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a5, b2, c52);
            c53 = Vector512.FusedMultiplyAdd(a5, b3, c53);
            var b0n = Vector512.Load(b + 64);
            var b1n = Vector512.Load(b + 80);
            var b2n = Vector512.Load(b + 96);
            var b3n = Vector512.Load(b + 112);
            var a0n = Vector512.Create(a[6]);
            c00 = Vector512.FusedMultiplyAdd(a0n, b0n, c00);
            c01 = Vector512.FusedMultiplyAdd(a0n, b1n, c01);
            c02 = Vector512.FusedMultiplyAdd(a0n, b2n, c02);
            c03 = Vector512.FusedMultiplyAdd(a0n, b3n, c03);
            var a1n = Vector512.Create(a[7]);
            c10 = Vector512.FusedMultiplyAdd(a1n, b0n, c10);
            c11 = Vector512.FusedMultiplyAdd(a1n, b1n, c11);
            c12 = Vector512.FusedMultiplyAdd(a1n, b2n, c12);
            c13 = Vector512.FusedMultiplyAdd(a1n, b3n, c13);
            var a2n = Vector512.Create(a[8]);
            c20 = Vector512.FusedMultiplyAdd(a2n, b0n, c20);
            c21 = Vector512.FusedMultiplyAdd(a2n, b1n, c21);
            c22 = Vector512.FusedMultiplyAdd(a2n, b2n, c22);
            c23 = Vector512.FusedMultiplyAdd(a2n, b3n, c23);
            var a3n = Vector512.Create(a[9]);
            c30 = Vector512.FusedMultiplyAdd(a3n, b0n, c30);
            c31 = Vector512.FusedMultiplyAdd(a3n, b1n, c31);
            c32 = Vector512.FusedMultiplyAdd(a3n, b2n, c32);
            c33 = Vector512.FusedMultiplyAdd(a3n, b3n, c33);
            var a4n = Vector512.Create(a[10]);
            c40 = Vector512.FusedMultiplyAdd(a4n, b0n, c40);
            c41 = Vector512.FusedMultiplyAdd(a4n, b1n, c41);
            c42 = Vector512.FusedMultiplyAdd(a4n, b2n, c42);
            c43 = Vector512.FusedMultiplyAdd(a4n, b3n, c43);
            var a5n = Vector512.Create(a[11]);
            c50 = Vector512.FusedMultiplyAdd(a5n, b0n, c50);
            c51 = Vector512.FusedMultiplyAdd(a5n, b1n, c51);
            c52 = Vector512.FusedMultiplyAdd(a5n, b2n, c52);
            c53 = Vector512.FusedMultiplyAdd(a5n, b3n, c53);
        }
        if ((kc & 1) != 0)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var b2 = Vector512.Load(b + 32);
            var b3 = Vector512.Load(b + 48);
            var a0 = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
            var a1 = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
            c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
            var a2 = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
            c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
            var a3 = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
            c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
            var a4 = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a4, b2, c42);
            c43 = Vector512.FusedMultiplyAdd(a4, b3, c43);
            var a5 = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a5, b2, c52);
            c53 = Vector512.FusedMultiplyAdd(a5, b3, c53);
        }
        if (beta == 1f)
        {
            Vector512.Store(Vector512.Load(c + 0 * ldc + 0) + c00, c + 0 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 0 * ldc + 16) + c01, c + 0 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 0 * ldc + 32) + c02, c + 0 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 0 * ldc + 48) + c03, c + 0 * ldc + 48);
            Vector512.Store(Vector512.Load(c + 1 * ldc + 0) + c10, c + 1 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 1 * ldc + 16) + c11, c + 1 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 1 * ldc + 32) + c12, c + 1 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 1 * ldc + 48) + c13, c + 1 * ldc + 48);
            Vector512.Store(Vector512.Load(c + 2 * ldc + 0) + c20, c + 2 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 2 * ldc + 16) + c21, c + 2 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 2 * ldc + 32) + c22, c + 2 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 2 * ldc + 48) + c23, c + 2 * ldc + 48);
            Vector512.Store(Vector512.Load(c + 3 * ldc + 0) + c30, c + 3 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 3 * ldc + 16) + c31, c + 3 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 3 * ldc + 32) + c32, c + 3 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 3 * ldc + 48) + c33, c + 3 * ldc + 48);
            Vector512.Store(Vector512.Load(c + 4 * ldc + 0) + c40, c + 4 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 4 * ldc + 16) + c41, c + 4 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 4 * ldc + 32) + c42, c + 4 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 4 * ldc + 48) + c43, c + 4 * ldc + 48);
            Vector512.Store(Vector512.Load(c + 5 * ldc + 0) + c50, c + 5 * ldc + 0);
            Vector512.Store(Vector512.Load(c + 5 * ldc + 16) + c51, c + 5 * ldc + 16);
            Vector512.Store(Vector512.Load(c + 5 * ldc + 32) + c52, c + 5 * ldc + 32);
            Vector512.Store(Vector512.Load(c + 5 * ldc + 48) + c53, c + 5 * ldc + 48);
        }
        else if (beta == 0f)
        {
            Vector512.Store(c00, c + 0 * ldc + 0);
            Vector512.Store(c01, c + 0 * ldc + 16);
            Vector512.Store(c02, c + 0 * ldc + 32);
            Vector512.Store(c03, c + 0 * ldc + 48);
            Vector512.Store(c10, c + 1 * ldc + 0);
            Vector512.Store(c11, c + 1 * ldc + 16);
            Vector512.Store(c12, c + 1 * ldc + 32);
            Vector512.Store(c13, c + 1 * ldc + 48);
            Vector512.Store(c20, c + 2 * ldc + 0);
            Vector512.Store(c21, c + 2 * ldc + 16);
            Vector512.Store(c22, c + 2 * ldc + 32);
            Vector512.Store(c23, c + 2 * ldc + 48);
            Vector512.Store(c30, c + 3 * ldc + 0);
            Vector512.Store(c31, c + 3 * ldc + 16);
            Vector512.Store(c32, c + 3 * ldc + 32);
            Vector512.Store(c33, c + 3 * ldc + 48);
            Vector512.Store(c40, c + 4 * ldc + 0);
            Vector512.Store(c41, c + 4 * ldc + 16);
            Vector512.Store(c42, c + 4 * ldc + 32);
            Vector512.Store(c43, c + 4 * ldc + 48);
            Vector512.Store(c50, c + 5 * ldc + 0);
            Vector512.Store(c51, c + 5 * ldc + 16);
            Vector512.Store(c52, c + 5 * ldc + 32);
            Vector512.Store(c53, c + 5 * ldc + 48);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 0), c00), c + 0 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 16), c01), c + 0 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 32), c02), c + 0 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 48), c03), c + 0 * ldc + 48);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 0), c10), c + 1 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 16), c11), c + 1 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 32), c12), c + 1 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 48), c13), c + 1 * ldc + 48);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 0), c20), c + 2 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 16), c21), c + 2 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 32), c22), c + 2 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 48), c23), c + 2 * ldc + 48);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 0), c30), c + 3 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 16), c31), c + 3 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 32), c32), c + 3 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 48), c33), c + 3 * ldc + 48);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 0), c40), c + 4 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 16), c41), c + 4 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 32), c42), c + 4 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 48), c43), c + 4 * ldc + 48);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 0), c50), c + 5 * ldc + 0);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 16), c51), c + 5 * ldc + 16);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 32), c52), c + 5 * ldc + 32);
            Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 48), c53), c + 5 * ldc + 48);
        }
    }

    /// <summary>
    /// An edge tile: only rows [0, mr) and columns [0, nr) of c exist. The full tile is computed into a stack buffer
    /// (the packed panels are zero-padded) and merged with masked loads and stores, so nothing outside C is touched.
    /// </summary>
    public static void KernelEdge(float* a, float* b, int kc, float* c, long ldc, float beta, int mr, int nr)
    {
        float* tile = stackalloc float[MR * NR];
        Kernel6x64(a, b, kc, tile, NR, 0f);
        var vb = Vector512.Create(beta);
        for (int v = 0; v * 16 < nr; v++)
        {
            int w = Math.Min(16, nr - v * 16);
            var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w)).AsSingle();
            for (int r = 0; r < mr; r++)
            {
                float* dst = c + r * ldc + v * 16;
                var t = Vector512.Load(tile + r * NR + v * 16);
                if (beta != 0f) t = Vector512.FusedMultiplyAdd(vb, Avx512F.MaskLoad(dst, mask, Vector512<float>.Zero), t);
                Avx512F.MaskStore(dst, mask, t);
            }
        }
    }
}
