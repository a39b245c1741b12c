using System.Runtime.InteropServices;

namespace Compiled.Nets.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, bound to Open MPI's <c>libmpi.so.40</c> through function pointers.
/// MPI.NET (the NuGet binding) P/Invokes Microsoft MPI's <c>msmpi.dll</c> and its integer handles, so it cannot load
/// Open MPI, whose handles are addresses of exported objects (<c>&amp;ompi_mpi_comm_world</c>); those are read here with
/// <see cref="NativeLibrary.GetExport"/>. MPICH's ABI (integer handles) would need a second handle table.
/// </summary>
internal static unsafe class OpenMpi
{
    private const string Library = "libmpi.so.40";
    public const int Success = 0;
    public const int ThreadFunneled = 1;
    /// <summary>MPI_IN_PLACE in Open MPI's mpi.h.</summary>
    public static readonly nint InPlace = 1;

    private static readonly Lazy<Api> s_api = new(Load);

    public static Api Get() => s_api.Value;

    /// <summary>Function pointers and the predefined handles (communicator, datatypes, operations, error handler).</summary>
    internal sealed class Api
    {
        public delegate* unmanaged<int*, nint*, int, int*, int> InitThread;
        public delegate* unmanaged<int*, int> Initialized;
        public delegate* unmanaged<int*, int> Finalized;
        public delegate* unmanaged<int> Finalize;
        public delegate* unmanaged<nint, int*, int> CommRank;
        public delegate* unmanaged<nint, int*, int> CommSize;
        public delegate* unmanaged<nint, nint, int> CommSetErrhandler;
        public delegate* unmanaged<nint, nint, int, nint, nint, nint, int> Allreduce;
        public delegate* unmanaged<nint, int, nint, int, nint, int> Bcast;
        public delegate* unmanaged<nint, int> Barrier;
        public delegate* unmanaged<nint, int, int> Abort;
        public delegate* unmanaged<int, byte*, int*, int> ErrorString;
        public nint CommWorld, Float, Double, Int, Sum, Max, ErrorsReturn;
    }

    private static Api Load()
    {
        if (!NativeLibrary.TryLoad(Library, typeof(OpenMpi).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.System32, out nint lib)
            && !NativeLibrary.TryLoad(Library, out lib))
            throw new DllNotFoundException($"Open MPI's {Library} was not found: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin) and start the job with mpirun.");
        nint F(string name) => NativeLibrary.TryGetExport(lib, name, out var p) ? p
            : throw new EntryPointNotFoundException($"{Library} has no '{name}': Compiled.Nets.Distributed binds Open MPI 4 or later.");
        return new Api
        {
            InitThread = (delegate* unmanaged<int*, nint*, int, int*, int>)F("MPI_Init_thread"),
            Initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized"),
            Finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized"),
            Finalize = (delegate* unmanaged<int>)F("MPI_Finalize"),
            CommRank = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_rank"),
            CommSize = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_size"),
            CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)F("MPI_Comm_set_errhandler"),
            Allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)F("MPI_Allreduce"),
            Bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)F("MPI_Bcast"),
            Barrier = (delegate* unmanaged<nint, int>)F("MPI_Barrier"),
            Abort = (delegate* unmanaged<nint, int, int>)F("MPI_Abort"),
            ErrorString = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string"),
            CommWorld = F("ompi_mpi_comm_world"),
            Float = F("ompi_mpi_float"),
            Double = F("ompi_mpi_double"),
            Int = F("ompi_mpi_int"),
            Sum = F("ompi_mpi_op_sum"),
            Max = F("ompi_mpi_op_max"),
            ErrorsReturn = F("ompi_mpi_errors_return"),
        };
    }

    /// <summary>Throws for an MPI error code, with MPI's own text for it.</summary>
    public static void Check(int code, string call)
    {
        if (code == Success) return;
        var api = Get();
        byte* text = stackalloc byte[512];
        int length = 0;
        string why = api.ErrorString(code, text, &length) == Success ? Marshal.PtrToStringUTF8((nint)text, length) : $"error {code}";
        throw new MpiException($"{call} failed: {why}", code);
    }
}

/// <summary>An MPI call failed (a peer died, a network error): the message names the call and MPI's reason.</summary>
public sealed class MpiException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MpiException(string message, int errorCode) : base(message) => ErrorCode = errorCode;

    /// <summary>MPI's error code.</summary>
    public int ErrorCode { get; }
}
