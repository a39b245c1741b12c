using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compiled.Nets.Gpu;

/// <summary>
/// cuBLAS's batched SGEMMs, which ILGPU.Algorithms' binding lacks: <c>cublasSgemmStridedBatched</c> and
/// <c>cublasSgemmBatched</c>, called through function pointers looked up in the library that binding loaded and on its
/// handle (so on its stream). A batch of row-major products becomes one call: strided where every operand's offset
/// grows by one stride a product, else over a device table of the operands' addresses — attention's per-head products,
/// whose heads are column blocks of [B, T, E] rows — built once per call site and kept. Checked against the device's
/// tiled kernel before it is used.
/// </summary>
internal sealed unsafe class CuBlasBatched : IDisposable
{
    private readonly nint _handle;
    private readonly BatchedEntries _entries;
    private readonly Accelerator _accelerator;
    /// <summary>The device's tables of operand addresses, by the call they serve.</summary>
    private readonly Dictionary<PointerTableKey, MemoryBuffer1D<long, Stride1D.Dense>> _tables = [];

    /// <summary>Tables kept before they are all freed (a twin's calls need a few per attention layer).</summary>
    private const int MostTables = 1024;

    /// <summary>The batched GEMMs at <paramref name="entries"/> on cuBLAS handle <paramref name="handle"/> (tests pass
    /// entries of their own, which read the CPU accelerator's memory).</summary>
    internal CuBlasBatched(nint handle, BatchedEntries entries, Accelerator accelerator)
    {
        _handle = handle; _entries = entries; _accelerator = accelerator;
    }

    /// <summary>The device's own batched GEMM (the tiled kernel), which cuBLAS's batched products are checked against.</summary>
    public delegate void ReferenceBatched(GemmArgs args, BatchStrides strides, int count, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c);

    /// <summary>The batched GEMMs of the cuBLAS at <paramref name="loaded"/> (null: the one the loader finds by name) on
    /// <paramref name="handle"/>, checked against <paramref name="reference"/>; null with <paramref name="why"/> when
    /// <c>COMPILED_NETS_CUBLAS_BATCHED=off</c>, the entry points are missing, or they fail or disagree.</summary>
    public static CuBlasBatched? TryOpen(nint handle, string? loaded, Accelerator accelerator, ReferenceBatched reference, out string why)
    {
        if (Environment.GetEnvironmentVariable("COMPILED_NETS_CUBLAS_BATCHED") == "off")
        {
            why = "COMPILED_NETS_CUBLAS_BATCHED=off";
            return null;
        }
        var entries = BatchedEntries.Bind(loaded, out why);
        if (!entries.IsBound) return null;
        var batched = new CuBlasBatched(handle, entries, accelerator);
        if (batched.AgreesWith(reference, out why)) return batched;
        batched.Dispose();
        return null;
    }

    /// <summary>Per-head products with interleaved heads (through the address tables) and a plain strided batch with
    /// beta, in each transpose pairing, against <paramref name="reference"/>.</summary>
    internal bool AgreesWith(ReferenceBatched reference, out string why)
    {
        const int batch = 3, heads = 2, m = 5, n = 7, k = 6;
        var rng = new Random(11);
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            // Heads as column blocks of rows of width heads·(block + 1), as attention's [B, T, E] activations hold them.
            int wa = ta ? m : k, wb = tb ? k : n, ra = ta ? k : m, rb = tb ? n : k;
            int lda = heads * (wa + 1), ldb = heads * (wb + 1), ldc = heads * (n + 1);
            var perHead = new BatchStrides { A = (long)ra * lda, B = (long)rb * ldb, C = (long)m * ldc, AHead = wa + 1, BHead = wb + 1, CHead = n + 1, Heads = heads };
            var headArgs = new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = ta ? 1 : 0, TransB = tb ? 1 : 0, Alpha = 0.5f, Beta = 0f };
            if (!AgreesOn(reference, headArgs, perHead, batch * heads, batch, rng, "per head", out why)) return false;
            var plainArgs = headArgs with { Lda = wa, Ldb = wb, Ldc = n, Beta = 0.25f };
            var plain = new BatchStrides { A = (long)ra * wa + 1, B = (long)rb * wb + 2, C = (long)m * n + 3, Heads = 1 };
            if (!AgreesOn(reference, plainArgs, plain, batch, batch, rng, "strided", out why)) return false;
        }
        why = "";
        return true;
    }

    private bool AgreesOn(ReferenceBatched reference, GemmArgs args, BatchStrides strides, int count, int samples, Random rng, string what, out string why)
    {
        float[] Random(long length) => Enumerable.Range(0, checked((int)length)).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        using var da = _accelerator.Allocate1D(Random(samples * strides.A)); using var db = _accelerator.Allocate1D(Random(samples * strides.B));
        var c = Random(samples * strides.C);
        using var mine = _accelerator.Allocate1D(c); using var theirs = _accelerator.Allocate1D(c);
        reference(args, strides, count, da.View, db.View, mine.View);
        try
        {
            Gemm(args, strides, count, da.View, db.View, theirs.View);
            _accelerator.Synchronize();
        }
        catch (Exception e) when (e is InvalidOperationException or CudaException)
        {
            why = $"cuBLAS's batched products ({what}) failed: {e.Message}";
            return false;
        }
        if (CuBlasLibrary.Disagreement(mine.GetAsArray1D(), theirs.GetAsArray1D()) is { } d)
        {
            why = $"cuBLAS's batched products ({what}) disagreed with the tiled kernel {d}; transposes {args.TransA}, {args.TransB}";
            return false;
        }
        why = "";
        return true;
    }

    /// <summary><paramref name="count"/> row-major products C_p = alpha·op(A_p)·op(B_p) + beta·C_p at the offsets of
    /// <paramref name="strides"/> (beta 0 never reads C), in one cuBLAS call.</summary>
    public void Gemm(GemmArgs args, BatchStrides strides, int count, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var call = BatchedColumnMajorCall.Of(args, strides);
        var cm = call.Call;
        float alpha = args.Alpha, beta = args.Beta;
        nint first = (cm.FirstIsB ? b : a).LoadEffectiveAddressAsPtr(), second = (cm.FirstIsB ? a : b).LoadEffectiveAddressAsPtr(), result = c.LoadEffectiveAddressAsPtr();
        int status;
        if (call.Strided)
            status = _entries.Strided(_handle, cm.TransFirst ? 1 : 0, cm.TransSecond ? 1 : 0, cm.M, cm.N, cm.K, &alpha, first, cm.LdFirst, call.StrideFirst,
                second, cm.LdSecond, call.StrideSecond, &beta, result, cm.Ldc, call.StrideC, count);
        else
        {
            nint table = ((ArrayView<long>)Table(new PointerTableKey(first, second, result, strides.A, strides.B, strides.C, strides.AHead, strides.BHead, strides.CHead, strides.Heads, count), strides, call).View).LoadEffectiveAddressAsPtr();
            status = _entries.Pointers(_handle, cm.TransFirst ? 1 : 0, cm.TransSecond ? 1 : 0, cm.M, cm.N, cm.K, &alpha, table, cm.LdFirst,
                table + count * sizeof(long), cm.LdSecond, &beta, table + 2 * count * sizeof(long), cm.Ldc, count);
        }
        if (status != 0) throw new InvalidOperationException($"cuBLAS's batched GEMM failed with status {status}.");
    }

    /// <summary>The device table of [first operands' addresses, second operands', results'] for one call site.</summary>
    private MemoryBuffer1D<long, Stride1D.Dense> Table(PointerTableKey key, BatchStrides strides, BatchedColumnMajorCall call)
    {
        if (_tables.TryGetValue(key, out var table)) return table;
        if (_tables.Count >= MostTables)
        {
            _accelerator.Synchronize(); // no queued call reads a table being freed
            FreeTables();
        }
        var addresses = new long[3 * key.Count];
        for (int p = 0; p < key.Count; p++)
        {
            var (f, s, r) = call.Offsets(strides, p);
            addresses[p] = key.First + f * sizeof(float);
            addresses[key.Count + p] = key.Second + s * sizeof(float);
            addresses[2 * key.Count + p] = key.Result + r * sizeof(float);
        }
        table = _accelerator.Allocate1D(addresses);
        _tables.Add(key, table);
        TablesBuilt++;
        return table;
    }

    /// <summary>Tables built so far (tests check one per call site).</summary>
    internal int TablesBuilt { get; private set; }

    private void FreeTables()
    {
        foreach (var t in _tables.Values) t.Dispose();
        _tables.Clear();
    }

    public void Dispose() => FreeTables();

    /// <summary>A call site: its operands' addresses and the strides as plain fields (compared without boxing, so a
    /// lookup allocates nothing).</summary>
    private readonly record struct PointerTableKey(nint First, nint Second, nint Result, long A, long B, long C, long AHead, long BHead, long CHead, int Heads, int Count);
}

/// <summary>The two batched SGEMM entry points (C signatures as cuBLAS declares them; alpha and beta by host pointer,
/// the handle's default pointer mode).</summary>
internal readonly unsafe struct BatchedEntries
{
    /// <summary>cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount).</summary>
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int> Strided;
    /// <summary>cublasSgemmBatched(handle, transa, transb, m, n, k, alpha, Aarray, lda, Barray, ldb, beta, Carray, ldc, batchCount).</summary>
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int, int> Pointers;

    internal BatchedEntries(nint strided, nint pointers)
    {
        Strided = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)strided;
        Pointers = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int, int>)pointers;
    }

    public bool IsBound => Strided != null && Pointers != null;

    /// <summary>The entry points of the library at <paramref name="loaded"/>, or of the first of cuBLAS's sonames the loader
    /// resolves — the library ILGPU.Algorithms opened by the same names, already loaded, so the same copy.</summary>
    public static BatchedEntries Bind(string? loaded, out string why)
    {
        nint library = 0;
        if (loaded is null || !NativeLibrary.TryLoad(loaded, out library))
            foreach (var name in new[] { "libcublas.so.12", "libcublas.so.11", "libcublas.so.10" })
                if (NativeLibrary.TryLoad(name, out library)) break;
        if (library == 0 || !NativeLibrary.TryGetExport(library, "cublasSgemmStridedBatched", out nint strided)
            || !NativeLibrary.TryGetExport(library, "cublasSgemmBatched", out nint pointers))
        {
            why = "cublasSgemmStridedBatched or cublasSgemmBatched not found";
            return default;
        }
        why = "";
        return new BatchedEntries(strided, pointers);
    }
}

/// <summary>
/// A batch of row-major products as cuBLAS's column-major batched call (operands swapped as in
/// <see cref="ColumnMajorCall"/>): strided when every operand's offset grows by one stride a product — a plain batch,
/// or heads laid out one after another — else the operands' offsets product by product, for a table of addresses.
/// </summary>
internal readonly record struct BatchedColumnMajorCall(ColumnMajorCall Call, bool Strided, long StrideFirst, long StrideSecond, long StrideC)
{
    public static BatchedColumnMajorCall Of(GemmArgs p, BatchStrides s)
    {
        var call = ColumnMajorCall.Of(p.TransA != 0, p.TransB != 0, p.M, p.N, p.K, p.Lda, p.Ldb, p.Ldc);
        bool linear = s.Heads == 1 || (s.A == s.Heads * s.AHead && s.B == s.Heads * s.BHead && s.C == s.Heads * s.CHead);
        // One stride per operand: a sample's with one head, else a head's (the next sample then follows the last head).
        long sa = s.Heads == 1 ? s.A : s.AHead, sb = s.Heads == 1 ? s.B : s.BHead, sc = s.Heads == 1 ? s.C : s.CHead;
        return call.FirstIsB ? new(call, linear, sb, sa, sc) : new(call, linear, sa, sb, sc);
    }

    /// <summary>Where product <paramref name="p"/>'s first operand, second and result start, in elements.</summary>
    public (long First, long Second, long Result) Offsets(BatchStrides s, long p) =>
        Call.FirstIsB ? (s.OffsetB(p), s.OffsetA(p), s.OffsetC(p)) : (s.OffsetA(p), s.OffsetB(p), s.OffsetC(p));
}
