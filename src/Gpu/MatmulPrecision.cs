namespace Compiled.Nets.Gpu;

/// <summary>
/// How a device's float32 matrix products may compute, as PyTorch's <c>torch.set_float32_matmul_precision</c>: the
/// GEMMs of Linears, convolutions and attention that run on cuBLAS.
/// </summary>
public enum MatmulPrecision
{
    /// <summary>float32 arithmetic throughout (the default; PyTorch's "highest").</summary>
    Highest,

    /// <summary>
    /// cuBLAS may use TF32 tensor cores: inputs rounded to 10 mantissa bits, products summed in float32 (PyTorch's
    /// "high", or <c>torch.backends.cuda.matmul.allow_tf32 = True</c>); several times the throughput on an Ampere or
    /// newer GPU, at about 1e-3 relative error per product. ILGPU's own kernels (the tiled GEMM where cuBLAS does not
    /// load, everything on the CPU accelerator) stay float32.
    /// </summary>
    High,
}
