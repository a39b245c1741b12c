using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>
/// The library kernels of one <see cref="GpuDevice"/>, one file per op family with forward and backward side by side
/// (GEMM, convolution, pooling, losses, elementwise helpers, optimizers). Each kernel is an ordinary static method
/// (index first, then views, then scalars), compiled by ILGPU on first use and cached; each launch is counted on the
/// device. Views are flat float arrays; sizes are passed explicitly, so a view may be longer than what a call uses.
/// </summary>
public sealed partial class GpuKernels
{
    private readonly GpuDevice _device;

    internal GpuKernels(GpuDevice device) => _device = device;

    private Accelerator Accelerator => _device.Accelerator;

    /// <summary>Counts the launch and returns the accelerator for it.</summary>
    private void Launched() => _device.RecordLaunch();

    /// <summary>Threads per group of the explicitly grouped kernels: 16×16 tiles on a GPU; 4×4 on the CPU
    /// accelerator, whose simulated group holds 16 threads.</summary>
    private int Tile => _device.IsCuda ? 16 : 4;

    /// <summary>Groups of <paramref name="threads"/> threads needed to cover <paramref name="n"/> items.</summary>
    private static int Groups(long n, int threads) => checked((int)((n + threads - 1) / threads));

    /// <summary>Checks that a view holds at least <paramref name="needed"/> elements before a kernel reads or writes it.</summary>
    private static void Need<T>(ArrayView<T> view, long needed, string what) where T : unmanaged
    {
        if (view.Length < needed) throw new ArgumentException($"{what} holds {view.Length} values; this call needs {needed}.", what);
    }
}
