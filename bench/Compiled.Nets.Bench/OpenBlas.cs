using System.Runtime.InteropServices;

namespace Compiled.Nets.Bench;

/// <summary>
/// OpenBLAS's cblas_sgemm through P/Invoke (Debian `libopenblas-dev`), forced to its AVX-512 kernel with
/// OPENBLAS_CORETYPE=SKYLAKEX (this machine's environment sets Haswell, its AVX2 kernel) and 2 threads.
/// Optional: when the library is missing the column reads n/a.
/// </summary>
public static unsafe partial class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;
    private static readonly Lazy<bool> s_available = new(() =>
    {
        // OpenBLAS reads the variable from the native environment when the library loads (the first call below);
        // Environment.SetEnvironmentVariable only changes .NET's copy, so go through libc.
        setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1);
        setenv("OPENBLAS_NUM_THREADS", "2", 1);
        try { openblas_set_num_threads(2); return true; }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    });

    public static bool Available => s_available.Value;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)] private static partial int setenv(string name, string value, int overwrite);
    [LibraryImport("libopenblas.so.0")] private static partial void openblas_set_num_threads(int n);
    [LibraryImport("libopenblas.so.0")] private static partial IntPtr openblas_get_corename();

    [LibraryImport("libopenblas.so.0")]
    private static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    public static string CoreName => Available ? Marshal.PtrToStringAnsi(openblas_get_corename()) ?? "?" : "n/a";

    public static void Sgemm(bool transB, int m, int n, int k, float[] a, float[] b, float[] c) => Sgemm(false, transB, m, n, k, a, b, c);

    /// <summary>C[m,n] = op(A)·op(B) with packed (leading dimension = row length) row-major operands.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float[] a, float[] b, float[] c)
    {
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            cblas_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, 1f, pa, transA ? m : k, pb, transB ? k : n, 0f, pc, n);
    }
}
