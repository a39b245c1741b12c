using Compiled.Nets.Gpu;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>One device per test class: kernels compile once and are reused by its tests. ILGPU's CPU accelerator, or the
/// device <c>COMPILED_NETS_TEST_DEVICE</c> names: <c>cuda</c> on a GPU machine (bench/gpu/test.sh), where every kernel
/// and twin is then checked against the CPU runtime on the GPU itself, or <c>cuda-shaped</c>, the CPU accelerator
/// launching as on CUDA (what test.sh will run, tried without a GPU: slow).</summary>
public class DeviceFixture : IDisposable
{
    public DeviceFixture() : this(Environment.GetEnvironmentVariable("COMPILED_NETS_TEST_DEVICE") switch
    {
        "cuda-shaped" => GpuDevice.OpenCudaShapedSimulation(),
        { Length: > 0 } kind => GpuDevice.Open(kind),
        _ => GpuDevice.Open("cpu-accelerator"),
    }) { }

    protected DeviceFixture(GpuDevice device) => Device = device;

    public GpuDevice Device { get; }

    public MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] data)
    {
        var b = Device.Allocate(data.Length);
        if (data.Length > 0) b.View.SubView(0, data.Length).CopyFromCPU(data);
        return b;
    }

    public MemoryBuffer1D<int, Stride1D.Dense> Upload(int[] data)
    {
        var b = Device.AllocateInts(data.Length);
        if (data.Length > 0) b.View.SubView(0, data.Length).CopyFromCPU(data);
        return b;
    }

    public static float[] Download(MemoryBuffer1D<float, Stride1D.Dense> b, long n)
    {
        var r = new float[n];
        if (n > 0) b.View.SubView(0, n).CopyToCPU(r);
        return r;
    }

    public void Dispose()
    {
        Device.Dispose();
        GC.SuppressFinalize(this);
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Asserts |a − e| ≤ tol·(1 + |e|) elementwise, naming the first index that differs.</summary>
    public static void Close(float[] expected, float[] actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i]))))
                Assert.Fail($"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }
}

/// <summary>The CPU accelerator simulating an NVIDIA GPU, every launch shaped as on CUDA (warps of 32, 16×16 GEMM tiles).</summary>
public sealed class CudaShapedFixture() : DeviceFixture(GpuDevice.OpenCudaShapedSimulation());

/// <summary>ILGPU's CPU accelerator whatever <c>COMPILED_NETS_TEST_DEVICE</c> says: for tests whose stand-ins read device
/// memory as host memory, which only the CPU accelerator's is.</summary>
public sealed class CpuAcceleratorFixture() : DeviceFixture(GpuDevice.Open("cpu-accelerator"));
