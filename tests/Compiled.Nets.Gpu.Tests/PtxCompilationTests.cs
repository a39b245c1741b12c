using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>
/// Every kernel — the library's and those the generator wrote for the test networks — compiled by ILGPU's PTX backend for
/// sm_90 (an H100/H200), without a GPU. The CPU accelerator runs kernels as .NET code and accepts constructs the GPU
/// backend rejects; this is the check that they would load on CUDA.
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
        return (context, new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null));
    });

    [Fact]
    public void There_are_kernels_from_the_library_and_from_the_generator() =>
        Assert.True(AllKernels().Count(m => m.DeclaringType == typeof(GpuKernels)) >= 20 && AllKernels().Count(m => m.Name.StartsWith("Chain", StringComparison.Ordinal)) >= 20);

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_PTX(string name)
    {
        var method = AllKernels().Single(m => m.DeclaringType!.FullName + "." + m.Name == name);
        var entry = method.GetParameters()[0].ParameterType == typeof(Index1D)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        var (_, backend) = s_backend.Value;
        lock (backend)
        {
            var kernel = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            Assert.Contains(".entry", kernel.PTXAssembly);
        }
    }
}
