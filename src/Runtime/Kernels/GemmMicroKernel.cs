using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// The register-blocked core of Gemm: a 6×64 tile of C kept in 24 Vector512 accumulators while k runs over packed
// panels (A: 6 values per k, B: 64 values per k). Generated once by a script for regularity; edit with care.
internal static unsafe class GemmMicroKernel
{
    public const int MR = 6, NR = 64;

    /// <summary>c[0..6, 0..64] += Σ_p a[p, 0..6]ᵀ · b[p, 0..64] (c has row stride ldc).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x64(float* a, float* b, int kc, float* c, int ldc)
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
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b + 64 * p + 0);
                var b1 = Vector512.Load(b + 64 * p + 16);
                var b2 = Vector512.Load(b + 64 * p + 32);
                var b3 = Vector512.Load(b + 64 * p + 48);
                var a0 = Vector512.Create(a[6 * p + 0]);
                c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
                c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
                c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
                c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
                var a1 = Vector512.Create(a[6 * p + 1]);
                c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
                c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
                var a2 = Vector512.Create(a[6 * p + 2]);
                c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
                c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
                c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
                var a3 = Vector512.Create(a[6 * p + 3]);
                c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
                c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
                c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
                var a4 = Vector512.Create(a[6 * p + 4]);
                c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
                c42 = Vector512.FusedMultiplyAdd(a4, b2, c42);
                c43 = Vector512.FusedMultiplyAdd(a4, b3, c43);
                var a5 = Vector512.Create(a[6 * p + 5]);
                c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
                c52 = Vector512.FusedMultiplyAdd(a5, b2, c52);
                c53 = Vector512.FusedMultiplyAdd(a5, b3, c53);
            }
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
}
