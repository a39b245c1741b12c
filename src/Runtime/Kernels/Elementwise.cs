using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Per-element functions the generated fused loops call (scalar and Vector512 forms; the JIT inlines them), plus
/// whole-span kernels used by the eager path and tests. Derivatives take what backward saved: the output y for
/// ReLU/tanh/sigmoid, the input x for GELU.
/// </summary>
public static class Elementwise
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Relu(float x) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Relu(Vector512<float> x) => throw new NotImplementedException();
    /// <summary>g·[y &gt; 0].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ReluGrad(float y, float g) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ReluGrad(Vector512<float> y, Vector512<float> g) => throw new NotImplementedException();

    /// <summary>x·Φ(x) with the exact erf (PyTorch's default GELU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Gelu(float x) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Gelu(Vector512<float> x) => throw new NotImplementedException();
    /// <summary>g·(Φ(x) + x·φ(x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GeluGrad(float x, float g) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GeluGrad(Vector512<float> x, Vector512<float> g) => throw new NotImplementedException();

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Tanh(float x) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Tanh(Vector512<float> x) => throw new NotImplementedException();
    /// <summary>g·(1 − y²).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float TanhGrad(float y, float g) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> TanhGrad(Vector512<float> y, Vector512<float> g) => throw new NotImplementedException();

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sigmoid(float x) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sigmoid(Vector512<float> x) => throw new NotImplementedException();
    /// <summary>g·y·(1 − y).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SigmoidGrad(float y, float g) => throw new NotImplementedException();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> SigmoidGrad(Vector512<float> y, Vector512<float> g) => throw new NotImplementedException();
}

/// <summary>Dropout masks: the fused loop multiplies by the mask forward and backward.</summary>
public static class DropoutKernels
{
    /// <summary>mask[i] = 0 with probability p, else 1/(1−p).</summary>
    public static void FillMask(Span<float> mask, float p, Rng rng) => throw new NotImplementedException();
}
