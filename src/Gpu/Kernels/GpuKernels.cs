using ILGPU;
using ILGPU.Algorithms;
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
    private int Tile => _device.LaunchesLikeCuda ? 16 : 4;

    /// <summary>
    /// Threads of a group that works one row of <paramref name="cols"/> values (layer norm, softmax, cross-entropy):
    /// whole warps, doubled while each thread would still have more than four values, up to <paramref name="most"/> on
    /// a GPU — neighbouring threads read neighbouring values, so a warp's loads coalesce — and the CPU accelerator's 16.
    /// </summary>
    private int RowThreads(long cols, int most = 128)
    {
        int threads = Accelerator.WarpSize, cap = Math.Min(Accelerator.MaxNumThreadsPerGroup, _device.LaunchesLikeCuda ? most : 16);
        while (threads * 2 <= cap && threads * 4L < cols) threads *= 2;
        return threads;
    }

    /// <summary>One group of <see cref="RowThreads"/> threads per row.</summary>
    private KernelConfig RowConfig(int rows, long cols) => new(rows, RowThreads(cols));

    /// <summary>One group per sum of <paramref name="count"/> values when the sums are few and long (a channel over the
    /// batch and the plane): up to 1024 threads each, so a few sums still fill a GPU.</summary>
    private KernelConfig SumConfig(int sums, long count) => new(sums, RowThreads(count, 1024));

    /// <summary>Warps a row group may hold (1024 threads of 32).</summary>
    private const int MostWarps = 32;

    /// <summary>The sum of every thread's <paramref name="value"/> in the group, returned to all of them, added in a fixed
    /// order (within a warp by shuffles, then the warps' sums in turn) so results do not vary from run to run. Every
    /// thread of the group must call it.</summary>
    private static float GroupSum(float value)
    {
        var partial = SharedMemory.Allocate<float>(MostWarps);
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2) value += Warp.ShuffleDown(value, offset);
        if (Warp.IsFirstLane) partial[Warp.WarpIdx] = value;
        Group.Barrier();
        float sum = 0f;
        for (int w = 0; w < Group.DimX / Warp.WarpSize; w++) sum += partial[w];
        Group.Barrier(); // every thread has read the partial sums before another call writes them
        return sum;
    }

    /// <summary>The largest of every thread's <paramref name="value"/> in the group, returned to all of them.</summary>
    private static float GroupMax(float value)
    {
        var partial = SharedMemory.Allocate<float>(MostWarps);
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2) value = XMath.Max(value, Warp.ShuffleDown(value, offset));
        if (Warp.IsFirstLane) partial[Warp.WarpIdx] = value;
        Group.Barrier();
        float max = float.NegativeInfinity;
        for (int w = 0; w < Group.DimX / Warp.WarpSize; w++) max = XMath.Max(max, partial[w]);
        Group.Barrier();
        return max;
    }

    /// <summary>
    /// In a column sum's group (threads X across a strip of columns, Y in slices of rows: <see cref="ColumnLaunch"/>),
    /// the sum of each column's <paramref name="value"/> over the slices, added in slice order, returned to slice 0 (0
    /// elsewhere). Every thread of the group must call it; the generated chain kernels call it for a bias's gradient.
    /// </summary>
    public static float SliceSum(float value)
    {
        var partial = SharedMemory.Allocate<float>(MostThreads);
        int lane = Group.IdxX, width = Group.DimX;
        partial[Group.IdxY * width + lane] = value;
        Group.Barrier();
        float total = 0f;
        if (Group.IdxY == 0)
            for (int k = 0; k < Group.DimY; k++) total += partial[k * width + lane];
        Group.Barrier(); // every partial is read before another call writes them
        return total;
    }

    /// <summary>Threads a group may hold.</summary>
    private const int MostThreads = 1024;

    /// <summary>Groups of <paramref name="threads"/> threads needed to cover <paramref name="n"/> items.</summary>
    private static int Groups(long n, int threads) => checked((int)((n + threads - 1) / threads));

    /// <summary>Checks that a view holds at least <paramref name="needed"/> elements before a kernel reads or writes it.</summary>
    private static void Need<T>(ArrayView<T> view, long needed, string what) where T : unmanaged
    {
        if (view.Length < needed) throw new ArgumentException($"{what} holds {view.Length} values; this call needs {needed}.", what);
    }
}
