using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compiled.Nets.Gpu;

/// <summary>
/// cuBLAS for the GEMMs on a CUDA device, through ILGPU.Algorithms' binding. That binding opens <c>libcublas.so.12</c>
/// (or .11/.10) by name, which the loader finds only on its search path; PyTorch's wheels bring their own copy under
/// <c>site-packages/nvidia/cublas/lib</c>, off that path. So the library is first looked for where it usually is and
/// loaded by full path — once loaded, the binding's by-name open finds it — and the binding is checked against the
/// device's own GEMM kernel on one awkward product before it is used. Anything that fails leaves the tiled kernel in
/// place, and <see cref="Description"/> says why.
/// </summary>
internal sealed class CuBlasLibrary : IDisposable
{
    private readonly CuBlas _blas;
    private readonly CuBlasBatched? _batched;

    private CuBlasLibrary(CuBlas blas, CuBlasBatched? batched, string description) { _blas = blas; _batched = batched; Description = description; }

    /// <summary>What the GEMMs run on, as the device reports it ("cuBLAS 12.4 (…/libcublas.so.12)", and why the
    /// batched products stay on the tiled kernel where they do).</summary>
    public string Description { get; }

    /// <summary>cuBLAS's batched GEMMs (attention's per-head products, grouped convolutions, MatMul over a batch), where
    /// they bind and agree with the tiled kernel; null elsewhere.</summary>
    public CuBlasBatched? Batched => _batched;

    /// <summary>Where to look for the library, in order: <c>COMPILED_NETS_CUBLAS</c> (a file or a folder; <c>off</c> keeps
    /// the tiled kernel, for comparisons), then the
    /// folders of <c>LD_LIBRARY_PATH</c>, CUDA's and the system's, a conda environment's, and the nvidia/cublas and
    /// torch folders of Python's site-packages (a conda environment's, a virtual environment's, the system's, the user's).</summary>
    public static IEnumerable<string> Candidates(Func<string, string?> environment, string home)
    {
        string[] names = ["libcublas.so.12", "libcublas.so.11", "libcublas.so.10", "libcublas.so"];
        var folders = new List<string>();
        if (environment("COMPILED_NETS_CUBLAS") is { Length: > 0 } explicitPath)
        {
            if (File.Exists(explicitPath)) yield return explicitPath;
            folders.Add(explicitPath);
        }
        if (environment("LD_LIBRARY_PATH") is { Length: > 0 } ld) folders.AddRange(ld.Split(':', StringSplitOptions.RemoveEmptyEntries));
        if (environment("CUDA_HOME") is { Length: > 0 } cuda) folders.Add(Path.Combine(cuda, "lib64"));
        folders.AddRange(["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]);
        if (environment("CONDA_PREFIX") is { Length: > 0 } conda) folders.Add(Path.Combine(conda, "lib"));
        var roots = new List<string> { "/usr/lib", "/usr/local/lib", "/opt/conda/lib", Path.Combine(home, ".local", "lib") };
        if (environment("VIRTUAL_ENV") is { Length: > 0 } venv) roots.Insert(0, Path.Combine(venv, "lib"));
        if (environment("CONDA_PREFIX") is { Length: > 0 } condaRoot) roots.Insert(0, Path.Combine(condaRoot, "lib"));
        foreach (var root in roots)
        {
            if (!Directory.Exists(root)) continue;
            foreach (var python in Directory.EnumerateDirectories(root, "python3*").Order())
                foreach (var packages in new[] { "site-packages", "dist-packages" })
                {
                    folders.Add(Path.Combine(python, packages, "nvidia", "cublas", "lib"));
                    folders.Add(Path.Combine(python, packages, "torch", "lib"));
                }
        }
        foreach (var folder in folders)
            foreach (var name in names)
            {
                string path = Path.Combine(folder, name);
                if (File.Exists(path)) yield return path;
            }
    }

    /// <summary>cuBLAS on <paramref name="accelerator"/>, checked against <paramref name="reference"/> (the tiled
    /// kernel); null with <paramref name="why"/> when it cannot be loaded or disagrees. Its batched products are
    /// checked against <paramref name="referenceBatched"/> apart: where they cannot be bound or disagree, they stay on
    /// the tiled kernel and the description says why.</summary>
    public static CuBlasLibrary? TryOpen(CudaAccelerator accelerator, ReferenceGemm reference, CuBlasBatched.ReferenceBatched referenceBatched, out string why)
    {
        if (Environment.GetEnvironmentVariable("COMPILED_NETS_CUBLAS") == "off")
        {
            why = "COMPILED_NETS_CUBLAS=off";
            return null;
        }
        string? loaded = null;
        foreach (var path in Candidates(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)))
        {
            // cuBLAS needs cublasLt beside it; the wheels find it through their RPATH, other layouts by this preload.
            string lt = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileName(path).Replace("libcublas", "libcublasLt"));
            if (File.Exists(lt)) NativeLibrary.TryLoad(lt, out _);
            if (NativeLibrary.TryLoad(path, out _)) { loaded = path; break; }
        }
        CuBlas? blas = null;
        try
        {
            blas = new CuBlas(accelerator);
            blas.Stream = (CudaStream)accelerator.DefaultStream;
            string description = $"cuBLAS {blas.Version} ({loaded ?? "found by the loader"})";
            if (!AgreesWith(blas, accelerator, reference, out why)) { blas.Dispose(); return null; }
            var batched = CuBlasBatched.TryOpen(blas.Handle, loaded, accelerator, referenceBatched, out string unbound);
            return new CuBlasLibrary(blas, batched, batched is null ? $"{description}; batched products on the ILGPU tiled kernel ({unbound})" : description);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CuBlasException or InvalidOperationException or TypeInitializationException)
        {
            blas?.Dispose();
            why = $"cuBLAS is unavailable ({e.GetType().Name}: {e.Message}); set COMPILED_NETS_CUBLAS to libcublas.so.12 or its folder";
            return null;
        }
    }

    /// <summary>The device's own GEMM (row-major, as <see cref="Gemm(bool, bool, int, int, int, float, ArrayView{float}, int, ArrayView{float}, int, float, ArrayView{float}, int)"/>), which cuBLAS is checked against.</summary>
    public delegate void ReferenceGemm(bool transA, bool transB, int m, int n, int k, ArrayView<float> a, int lda, ArrayView<float> b, int ldb, ArrayView<float> c, int ldc);

    /// <summary>One 37×29 product over 19, padded rows, in each transpose pairing, cuBLAS against the device's own kernel.</summary>
    private static bool AgreesWith(CuBlas blas, Accelerator accelerator, ReferenceGemm reference, out string why)
    {
        const int m = 37, n = 29, k = 19;
        var rng = new Random(7);
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            // Leading dimensions past the matrices' widths, as a view of a wider buffer has.
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
            var a = Enumerable.Range(0, (ta ? k : m) * lda).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            var b = Enumerable.Range(0, (tb ? n : k) * ldb).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            using var da = accelerator.Allocate1D(a); using var db = accelerator.Allocate1D(b);
            using var mine = accelerator.Allocate1D<float>(m * ldc); using var theirs = accelerator.Allocate1D<float>(m * ldc);
            mine.MemSetToZero(); theirs.MemSetToZero();
            reference(ta, tb, m, n, k, da.View, lda, db.View, ldb, mine.View, ldc);
            Gemm(blas, ta, tb, m, n, k, 1f, da.View, lda, db.View, ldb, 0f, theirs.View, ldc);
            accelerator.Synchronize();
            if (Disagreement(mine.GetAsArray1D(), theirs.GetAsArray1D()) is { } d)
            {
                why = $"cuBLAS disagreed with the device's GEMM kernel {d}; transposes {ta}, {tb}";
                return false;
            }
        }
        why = "";
        return true;
    }

    /// <summary>Where cuBLAS's result first differs from the reference's by more than 1e-4 relative ("at [i] (x vs y)"), or null.</summary>
    internal static string? Disagreement(float[] reference, float[] theirs)
    {
        for (int i = 0; i < reference.Length; i++)
            if (!(Math.Abs(reference[i] - theirs[i]) <= 1e-4f * (1 + Math.Abs(reference[i])))) return $"at [{i}] ({theirs[i]} vs {reference[i]})";
        return null;
    }

    /// <summary>Lets cuBLAS's float32 GEMMs (the batched ones too: they share the handle) use TF32 tensor cores, or not.</summary>
    public void UseTf32(bool on) =>
        _blas.MathMode = on ? Tf32TensorOpMath : CuBlasMathMode.DefaultMath;

    /// <summary>CUBLAS_TF32_TENSOR_OP_MATH (cuBLAS 11 and later), which ILGPU.Algorithms' enum predates.</summary>
    private const CuBlasMathMode Tf32TensorOpMath = (CuBlasMathMode)3;

    /// <summary>Row-major C = alpha·op(A)·op(B) + beta·C as cuBLAS's column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ.</summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc) => Gemm(_blas, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    private static void Gemm(CuBlas blas, bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
    {
        var call = ColumnMajorCall.Of(transA, transB, m, n, k, lda, ldb, ldc);
        static CuBlasOperation Op(bool transpose) => transpose ? CuBlasOperation.Transpose : CuBlasOperation.NonTranspose;
        blas.Gemm(Op(call.TransFirst), Op(call.TransSecond), call.M, call.N, call.K, alpha, call.FirstIsB ? b : a, call.LdFirst, call.FirstIsB ? a : b, call.LdSecond, beta, c, call.Ldc);
    }

    public void Dispose()
    {
        _batched?.Dispose();
        _blas.Dispose();
    }
}

/// <summary>
/// The column-major GEMM (cuBLAS's) that computes a row-major C = alpha·op(A)·op(B) + beta·C: read column-major, each
/// row-major matrix is its transpose, so it is Cᵀ = op(B)ᵀ·op(A)ᵀ — the operands swap, and M with N; the transposes
/// and leading dimensions stay with their matrices.
/// </summary>
internal readonly record struct ColumnMajorCall(bool TransFirst, bool TransSecond, int M, int N, int K, bool FirstIsB, int LdFirst, int LdSecond, int Ldc)
{
    public static ColumnMajorCall Of(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc) =>
        new(transB, transA, n, m, k, FirstIsB: true, ldb, lda, ldc);
}
