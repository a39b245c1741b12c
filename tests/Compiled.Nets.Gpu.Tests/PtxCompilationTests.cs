using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>
/// Every kernel — the library's and those the generator wrote for the test networks — compiled by ILGPU's PTX backend,
/// then assembled by NVIDIA's ptxas for sm_90 (an H100/H200), without a GPU. The CPU accelerator runs kernels as .NET
/// code and accepts constructs the GPU backend rejects; ptxas is what a CUDA driver runs on the PTX when it loads it.
/// </summary>
public sealed class PtxCompilationTests
{
    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string>();
        foreach (var m in AllKernels()) data.Add(m.DeclaringType!.FullName + "." + m.Name);
        return data;
    }

    private static IEnumerable<MethodInfo> AllKernels()
    {
        const BindingFlags flags = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var library = typeof(GpuKernels).GetMethods(flags).Where(m => m.Name.EndsWith("Kernel", StringComparison.Ordinal));
        var generated = typeof(PtxCompilationTests).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(DeviceNetwork)))
            .SelectMany(t => t.GetMethods(flags))
            .Where(m => m.Name.StartsWith("Chain", StringComparison.Ordinal));
        return library.Concat(generated);
    }

    private static readonly Lazy<(Context Context, PTXBackend Backend)> s_backend = new(() =>
    {
        var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        // ISA 7.8 is the newest the pinned ptxas reads; ILGPU writes the same kernel body for every ISA, only the
        // .version line names it (a driver of CUDA 12 gets 8.x).
        return (context, new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_78, null));
    });

    [Fact]
    public void There_are_kernels_from_the_library_and_from_the_generator() =>
        Assert.True(AllKernels().Count(m => m.DeclaringType == typeof(GpuKernels)) >= 20 && AllKernels().Count(m => m.Name.StartsWith("Chain", StringComparison.Ordinal)) >= 20);

    /// <summary>A group may have 1024 threads (the row and sum kernels take up to that), and sm_90 gives a group 65,536
    /// registers and 48 KiB of static shared memory: a kernel over 64 registers would fail to launch there.</summary>
    private const int MostRegisters = 65_536 / 1024, MostSharedBytes = 48 * 1024;

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_PTX_that_ptxas_assembles_for_sm_90_within_a_1024_thread_group(string name)
    {
        var method = AllKernels().Single(m => m.DeclaringType!.FullName + "." + m.Name == name);
        var entry = method.GetParameters()[0].ParameterType == typeof(Index1D)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        var (_, backend) = s_backend.Value;
        string ptx;
        lock (backend) ptx = ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
        Assert.Contains(".version " + Ptxas.Isa, ptx);

        var report = Ptxas.Assemble(ptx, "sm_90");
        Assert.True(report.Registers is > 0 and <= MostRegisters, $"{name} uses {report.Registers} registers per thread:\n{report.Log}");
        Assert.True(report.SharedBytes <= MostSharedBytes, $"{name} uses {report.SharedBytes} bytes of shared memory:\n{report.Log}");
    }

    [Fact]
    public void Ptxas_rejects_what_a_driver_would_reject_and_counts_registers()
    {
        const string header = ".version " + Ptxas.Isa + "\n.target sm_80\n.address_size 64\n";
        var ok = Ptxas.Assemble(header + ".visible .entry k(.param .u64 p)\n{\n.reg .b64 %a;\n.reg .f32 %f;\nld.param.u64 %a, [p];\ncvta.to.global.u64 %a, %a;\nmov.f32 %f, 0f3F800000;\nst.global.f32 [%a], %f;\nret;\n}\n", "sm_90");
        Assert.InRange(ok.Registers, 1, 16);
        // An undeclared register, as a backend bug would leave it.
        var e = Assert.Throws<InvalidOperationException>(() => Ptxas.Assemble(header + ".visible .entry k()\n{\nmov.f32 %f, 0f3F800000;\nret;\n}\n", "sm_90"));
        Assert.Contains("rejected", e.Message);
    }
}
