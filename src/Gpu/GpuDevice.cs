using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Compiled.Nets.Gpu;

/// <summary>
/// An accelerator the compiled networks run on: an NVIDIA GPU through CUDA, or ILGPU's CPU accelerator (which runs
/// the same kernels on the CPU's threads, for machines without a GPU and for tests). It owns the ILGPU context, the
/// library kernels (loaded on first use and cached) and a counter of kernel launches.
/// </summary>
/// <example><code>
/// using var device = GpuDevice.Open("auto");
/// Console.WriteLine(device);              // "cuda: NVIDIA H200" or "cpu-accelerator: CPUAccelerator"
/// using var onDevice = net.ToDevice(device);
/// </code></example>
public sealed class GpuDevice : IDisposable
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private long _launches;
    private GpuKernels? _kernels;
    private CuBlasLibrary? _blas;
    private string? _blasAbsent;
    private MatmulPrecision _precision;
    private bool _disposed;

    private GpuDevice(Context context, Accelerator accelerator, string kind, bool launchesLikeCuda)
    {
        _context = context;
        _accelerator = accelerator;
        Kind = kind;
        LaunchesLikeCuda = launchesLikeCuda;
    }

    /// <summary>
    /// Opens a device: <c>"cuda"</c> (the first CUDA GPU; an error when there is none), <c>"cuda:N"</c> (GPU N, as
    /// PyTorch numbers them: one per rank of a data-parallel job on a machine with several), <c>"cpu-accelerator"</c>
    /// (ILGPU's CPU accelerator), or <c>"auto"</c> (CUDA when present, else the CPU accelerator; <see cref="Kind"/>
    /// says which was chosen).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown kind.</exception>
    /// <exception cref="InvalidOperationException">"cuda" on a machine where ILGPU finds no CUDA GPU, or "cuda:N" past its GPUs.</exception>
    public static GpuDevice Open(string kind = "auto")
    {
        kind = (kind ?? throw new ArgumentNullException(nameof(kind))).Trim().ToLowerInvariant();
        int index = 0;
        if (kind.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!int.TryParse(kind.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out index))
                throw new ArgumentException($"Unknown device '{kind}': a GPU is \"cuda:N\" with N its number from 0.", nameof(kind));
            kind = "cuda";
        }
        if (kind is not ("auto" or "cuda" or "cpu-accelerator" or "cpu"))
            throw new ArgumentException($"Unknown device kind '{kind}': use \"auto\", \"cuda\", \"cuda:N\" or \"cpu-accelerator\".", nameof(kind));
        // Math functions (exp, tanh, erf's pieces) map to ILGPU.Algorithms' XMath on every backend.
        var context = Context.Create(b => b.Cuda().CPU(CPUDeviceKind.Default).EnableAlgorithms().Optimize(OptimizationLevel.O1));
        try
        {
            var cuda = context.GetCudaDevices();
            if (kind == "cuda" && cuda.Count > 0 && index >= cuda.Count)
                throw new InvalidOperationException($"There is no CUDA GPU {index}: ILGPU sees {cuda.Count} (numbered from 0).");
            if (kind != "cpu-accelerator" && kind != "cpu" && cuda.Count > 0)
                return new GpuDevice(context, cuda[index].CreateAccelerator(context), "cuda", launchesLikeCuda: true);
            if (kind == "cuda")
                throw new InvalidOperationException("No CUDA GPU was found (ILGPU sees none: is the NVIDIA driver installed and libcuda.so on the library path?). Use \"auto\" or \"cpu-accelerator\" to run on the CPU accelerator instead.");
            return new GpuDevice(context, context.GetCPUDevice(0).CreateAccelerator(context), "cpu-accelerator", launchesLikeCuda: false);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// ILGPU's CPU accelerator simulating an NVIDIA GPU's groups (warps of 32 threads, up to 256 threads a group: the
    /// most any explicitly grouped kernel here launches), with every launch shaped as on CUDA: 16×16 GEMM tiles and the
    /// tiled kernels wherever a GPU runs them (cuBLAS aside), rows of warps. The CUDA path's group sizes, shared-memory
    /// layouts, shuffles and barriers then run without a GPU — slowly: tests use small sizes.
    /// </summary>
    internal static GpuDevice OpenCudaShapedSimulation()
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1))
            .EnableAlgorithms().Optimize(OptimizationLevel.O1));
        try { return new GpuDevice(context, context.GetCPUDevice(0).CreateAccelerator(context), "cpu-accelerator", launchesLikeCuda: true); }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>"cuda" or "cpu-accelerator".</summary>
    public string Kind { get; }

    /// <summary>The accelerator's name as ILGPU reports it (the GPU's model for CUDA).</summary>
    public string Name => Accelerator.Name;

    /// <summary>True on a CUDA GPU.</summary>
    public bool IsCuda => Kind == "cuda";

    /// <summary>Kernels launch with a GPU's shapes (16×16 tiles, the tiled GEMMs): on CUDA, and on the simulation of
    /// <see cref="OpenCudaShapedSimulation"/>; the plain CPU accelerator takes the one-thread-per-output kernels.</summary>
    internal bool LaunchesLikeCuda { get; }

    /// <summary>Kernel launches since the device was opened or <see cref="ResetLaunchCount"/> was called.</summary>
    public long LaunchCount => Interlocked.Read(ref _launches);

    /// <summary>Sets <see cref="LaunchCount"/> to zero.</summary>
    public void ResetLaunchCount() => Interlocked.Exchange(ref _launches, 0);

    /// <summary>Counts one kernel launch (library kernels and generated fused kernels call it as they launch).</summary>
    public void RecordLaunch() => Interlocked.Increment(ref _launches);

    internal bool IsDisposed => _disposed;

    /// <summary>Held by each call of a twin or a device optimizer on this device, so they run one at a time.</summary>
    internal Lock Gate { get; } = new();

    /// <summary>The ILGPU accelerator.</summary>
    /// <exception cref="ObjectDisposedException">After <see cref="Dispose"/>.</exception>
    public Accelerator Accelerator
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _accelerator;
        }
    }

    /// <summary>The library kernels on this device (GEMM, convolution, pooling, losses, optimizers).</summary>
    public GpuKernels Kernels
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _kernels ??= new GpuKernels(this);
        }
    }

    /// <summary>cuBLAS on a CUDA device where it loads and agrees with the tiled kernel (tried once, on the first GEMM); null
    /// elsewhere. The check's own launches are not counted in <see cref="LaunchCount"/>: they are the device's, not the
    /// call's that happened to come first.</summary>
    internal CuBlasLibrary? Blas
    {
        get
        {
            if (_blas is null && _blasAbsent is null)
            {
                if (!IsCuda) _blasAbsent = "not a CUDA device";
                else
                {
                    long before = LaunchCount;
                    _blas = CuBlasLibrary.TryOpen((CudaAccelerator)Accelerator,
                        (ta, tb, m, n, k, a, lda, b, ldb, c, ldc) => Kernels.GemmTiled(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc),
                        (args, strides, count, a, b, c) => Kernels.GemmBatchedTiled(a, b, c, args, strides, count), out _blasAbsent);
                    Interlocked.Add(ref _launches, before - LaunchCount);
                    _blas?.UseTf32(_precision == MatmulPrecision.High);
                }
            }
            return _blas;
        }
    }

    /// <summary>What the GEMMs run on: cuBLAS (its version and where it was loaded from, and whether it may use TF32),
    /// or ILGPU's tiled kernel and why cuBLAS is not used, or the CPU accelerator's one thread per output.</summary>
    public string GemmBackend => !LaunchesLikeCuda ? "one thread per output (CPU accelerator)"
        : Blas is { } blas ? blas.Description + (_precision == MatmulPrecision.High ? "; TF32 tensor cores (MatmulPrecision.High)" : "")
        : $"ILGPU tiled kernel ({_blasAbsent})";

    /// <summary>
    /// Whether cuBLAS's GEMMs may use TF32 tensor cores (<see cref="MatmulPrecision.High"/>) or compute in float32
    /// (<see cref="MatmulPrecision.Highest"/>, the default), as <c>torch.set_float32_matmul_precision</c>. It applies
    /// from the next GEMM; on a device without cuBLAS it changes nothing.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A value that is not one of the two.</exception>
    /// <exception cref="ObjectDisposedException">After <see cref="Dispose"/>.</exception>
    public MatmulPrecision MatmulPrecision
    {
        get => _precision;
        set
        {
            if (value is not (MatmulPrecision.Highest or MatmulPrecision.High))
                throw new ArgumentOutOfRangeException(nameof(value), value, "MatmulPrecision is Highest (float32) or High (TF32 on cuBLAS).");
            using var exclusive = Gate.EnterScope(); // not in the middle of another thread's step
            ObjectDisposedException.ThrowIf(_disposed, this);
            _precision = value;
            _blas?.UseTf32(value == MatmulPrecision.High);
        }
    }

    /// <summary>Waits for every launched kernel and copy to finish.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>Allocates <paramref name="length"/> floats on the device (contents undefined).</summary>
    /// <exception cref="DeviceMemoryException">When the device cannot hold them.</exception>
    public MemoryBuffer1D<float, Stride1D.Dense> Allocate(long length) => Allocated(length, sizeof(float), n => Accelerator.Allocate1D<float>(n));

    /// <summary>Allocates <paramref name="length"/> ints on the device (contents undefined).</summary>
    /// <exception cref="DeviceMemoryException">When the device cannot hold them.</exception>
    public MemoryBuffer1D<int, Stride1D.Dense> AllocateInts(long length) => Allocated(length, sizeof(int), n => Accelerator.Allocate1D<int>(n));

    /// <summary>Bytes of device memory free now, as the driver counts them (<c>torch.cuda.mem_get_info</c>'s first
    /// value), or null where the device cannot say (the CPU accelerator's memory is the process's).</summary>
    public long? FreeMemory
    {
        get
        {
            if (FreeMemoryOverride is { } free) return free;
            return Accelerator is CudaAccelerator cuda ? cuda.GetFreeMemory() : null;
        }
    }

    /// <summary>Bytes of device memory in all.</summary>
    public long TotalMemory => Accelerator.MemorySize;

    /// <summary>For tests: the free memory the device reports instead of the driver's.</summary>
    internal long? FreeMemoryOverride { get; set; }

    /// <summary>For tests: called with each allocation's bytes; an exception it returns is thrown as the driver's refusal.</summary>
    internal Func<long, Exception?>? AllocationFault { get; set; }

    private MemoryBuffer1D<T, Stride1D.Dense> Allocated<T>(long length, int size, Func<long, MemoryBuffer1D<T, Stride1D.Dense>> allocate) where T : unmanaged
    {
        length = Math.Max(length, 1);
        long bytes = length * size;
        if (FreeMemoryOverride is { } free && bytes > free) throw OutOfMemory(bytes, "a buffer", null);
        try
        {
            if (AllocationFault?.Invoke(bytes) is { } fault) throw fault;
            return allocate(length);
        }
        catch (Exception e) when (e is not ObjectDisposedException and not DeviceMemoryException)
        {
            // Whatever the driver (or the CPU accelerator's host allocation) says, the caller learns what was asked and what was free.
            throw OutOfMemory(bytes, "a buffer", e);
        }
    }

    /// <summary>The error for <paramref name="bytes"/> asked for <paramref name="what"/>, with what the device has free.</summary>
    internal DeviceMemoryException OutOfMemory(long bytes, string what, Exception? inner)
    {
        long? free = null;
        try { free = FreeMemory; } catch (Exception) { } // a failing device may not answer; the message says so
        string have = free is { } f ? $"{DeviceMemoryException.Size(f)} free of {DeviceMemoryException.Size(TotalMemory)}" : "how much is free is unknown here";
        return new DeviceMemoryException($"{this} cannot hold {DeviceMemoryException.Size(bytes)} for {what} ({have}){(inner is null ? "" : ": " + inner.Message)}.", bytes, free, inner);
    }

    /// <inheritdoc/>
    public override string ToString() => _disposed ? Kind + " (disposed)" : $"{Kind}: {_accelerator.Name}";

    /// <summary>Frees the accelerator and the ILGPU context; networks moved to this device cannot be used afterwards.</summary>
    public void Dispose()
    {
        using var exclusive = Gate.EnterScope(); // after a call in flight on another thread has finished
        if (_disposed) return;
        _disposed = true;
        _blas?.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }
}
