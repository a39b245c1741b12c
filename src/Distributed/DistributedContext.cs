namespace Compiled.Nets.Distributed;

/// <summary>
/// This process's place in an MPI job started by <c>mpirun</c>: its rank, the number of ranks, its rank on this
/// machine, and the collective calls data-parallel training makes (allreduce, broadcast, barrier). One per process
/// (MPI initialises once); dispose it at the end of the job. An unhandled exception on any rank aborts the whole job,
/// so the other ranks never wait for it in a collective call.
/// </summary>
public sealed unsafe class DistributedContext : IDisposable
{
    private static DistributedContext? s_current;
    private readonly OpenMpi.Api _api;
    private bool _disposed;

    private DistributedContext(OpenMpi.Api api, int rank, int size, int localRank)
    {
        _api = api; Rank = rank; Size = size; LocalRank = localRank;
    }

    /// <summary>True when this process was started by Open MPI's mpirun (its environment names the job's ranks).</summary>
    public static bool IsLaunchedByMpi => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
    public int Rank { get; }
    /// <summary>The number of ranks in the job.</summary>
    public int Size { get; }
    /// <summary>This process's rank among those on its machine (to pick a GPU, or a core set).</summary>
    public int LocalRank { get; }
    /// <summary>Rank 0: the one that writes checkpoints and reports.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>Joins the MPI job this process was started in.</summary>
    /// <exception cref="InvalidOperationException">When the process was not started by mpirun, or a context exists already.</exception>
    /// <exception cref="DllNotFoundException">When Open MPI is not installed.</exception>
    public static DistributedContext Initialize()
    {
        if (!IsLaunchedByMpi)
            throw new InvalidOperationException("This process was not started by mpirun (OMPI_COMM_WORLD_SIZE is not set): start the job as 'mpirun -np 2 dotnet App.dll …', with a hostfile to span machines.");
        if (s_current is not null) throw new InvalidOperationException("MPI is initialised once per process: use the DistributedContext that exists.");
        var api = OpenMpi.Get();
        int initialized;
        OpenMpi.Check(api.Initialized(&initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            int provided;
            // Funneled: only the thread that initialised calls MPI (the kernels' helper threads never do).
            OpenMpi.Check(api.InitThread(null, null, OpenMpi.ThreadFunneled, &provided), "MPI_Init_thread");
        }
        // Errors come back as codes (and become MpiException) instead of MPI's default of aborting without a word.
        OpenMpi.Check(api.CommSetErrhandler(api.CommWorld, api.ErrorsReturn), "MPI_Comm_set_errhandler");
        int r, n;
        OpenMpi.Check(api.CommRank(api.CommWorld, &r), "MPI_Comm_rank");
        OpenMpi.Check(api.CommSize(api.CommWorld, &n), "MPI_Comm_size");
        int rank = r, size = n;
        int local = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out int l) ? l : 0;
        var context = new DistributedContext(api, rank, size, local);
        s_current = context;
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (context._disposed) return;
            Console.Error.WriteLine($"rank {rank} of {size}: {e.ExceptionObject}");
            Console.Error.WriteLine($"rank {rank} of {size}: aborting the MPI job, so that no other rank waits for this one.");
            context._api.Abort(context._api.CommWorld, 1);
        };
        return context;
    }

    /// <summary>Sums <paramref name="data"/> over all ranks, in place (every rank gets the sum).</summary>
    public void AllReduceSum(Span<float> data) => AllReduce(data, _api.Float, _api.Sum, "MPI_Allreduce (sum of floats)");

    /// <summary>Sums <paramref name="data"/> over all ranks, in place.</summary>
    public void AllReduceSum(Span<double> data) => AllReduce(data, _api.Double, _api.Sum, "MPI_Allreduce (sum of doubles)");

    /// <summary>The sum of one value over all ranks.</summary>
    public double Sum(double value)
    {
        Span<double> v = [value];
        AllReduceSum(v);
        return v[0];
    }

    /// <summary>The largest of one value over all ranks.</summary>
    public double Max(double value)
    {
        Span<double> v = [value];
        AllReduce(v, _api.Double, _api.Max, "MPI_Allreduce (max)");
        return v[0];
    }

    /// <summary>Overwrites <paramref name="data"/> on every rank with <paramref name="root"/>'s.</summary>
    public void Broadcast(Span<float> data, int root = 0) => Broadcast(data, _api.Float, root);

    /// <summary>Overwrites <paramref name="data"/> on every rank with <paramref name="root"/>'s.</summary>
    public void Broadcast(Span<int> data, int root = 0) => Broadcast(data, _api.Int, root);

    /// <summary>Waits until every rank has called it.</summary>
    public void Barrier()
    {
        ThrowIfDisposed();
        OpenMpi.Check(_api.Barrier(_api.CommWorld), "MPI_Barrier");
    }

    /// <summary>Ends the whole job now (every rank), with <paramref name="exitCode"/>.</summary>
    public void Abort(int exitCode) => _api.Abort(_api.CommWorld, exitCode);

    // MPI counts are ints: large buffers go in pieces of 2^28 elements.
    private const int Piece = 1 << 28;

    private void AllReduce<T>(Span<T> data, nint type, nint op, string call) where T : unmanaged
    {
        ThrowIfDisposed();
        fixed (T* p = data)
            for (int start = 0; start < data.Length; start += Piece)
                OpenMpi.Check(_api.Allreduce(OpenMpi.InPlace, (nint)(p + start), Math.Min(Piece, data.Length - start), type, op, _api.CommWorld), call);
    }

    private void Broadcast<T>(Span<T> data, nint type, int root) where T : unmanaged
    {
        ThrowIfDisposed();
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"The job has ranks 0 … {Size - 1}.");
        fixed (T* p = data)
            for (int start = 0; start < data.Length; start += Piece)
                OpenMpi.Check(_api.Bcast((nint)(p + start), Math.Min(Piece, data.Length - start), type, root, _api.CommWorld), "MPI_Bcast");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Leaves the MPI job (MPI_Finalize) after every rank has arrived.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int finalized;
        if (_api.Finalized(&finalized) == OpenMpi.Success && finalized == 0) _api.Finalize();
        s_current = null;
    }
}
