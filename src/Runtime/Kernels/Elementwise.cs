using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Per-element functions the generated fused loops call (scalar, Vector512 and Vector256 forms; the JIT inlines them). The scalar
/// and vector forms use the same formulas, so a loop's vector body and scalar tail agree bit for bit where the
/// hardware allows. Derivatives take what backward saved: the output y for ReLU/tanh/sigmoid, the input x for GELU,
/// leaky ReLU, SiLU, ELU and hard swish.
/// </summary>
public static partial class Elementwise
{
    // erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), cheap to vectorise.
    private const float ErfP = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    private const float InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.39894228040143268f;

    // max(x, 0) as IEEE 754-2019 maximum, in both forms alike: NaN stays NaN (as in PyTorch), −0 becomes +0. (The scalar
    // form used to map NaN to 0, so a NaN turned into 0 or stayed NaN depending on where a loop's vector body ended.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Relu(float x) => MathF.Max(x, 0f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Relu(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
    /// <summary>g·[y &gt; 0].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ReluGrad(float y, float g) => y > 0f ? g : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ReluGrad(Vector512<float> y, Vector512<float> g) => Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<float>.Zero), g, Vector512<float>.Zero);

    /// <summary>erf(x) to about 1.5e-7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        float a = MathF.Abs(x), t = 1f / (1f + ErfP * a);
        float poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
        float r = 1f - poly * MathF.Exp(-a * a);
        return x < 0f ? -r : r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Erf(Vector512<float> x)
    {
        var a = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(ErfP) * a);
        var poly = Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(
            Vector512.Create(A5), t, Vector512.Create(A4)), t, Vector512.Create(A3)), t, Vector512.Create(A2)), t, Vector512.Create(A1)) * t;
        var r = Vector512<float>.One - poly * Vector512.Exp(-(a * a));
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -r, r);
    }

    /// <summary>x·Φ(x) with the erf form (PyTorch's default GELU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Gelu(Vector512<float> x) => Vector512.Create(0.5f) * x * (Vector512<float>.One + Erf(x * Vector512.Create(InvSqrt2)));
    /// <summary>g·(Φ(x) + x·φ(x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluGrad(float x, float g) => g * (0.5f * (1f + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * MathF.Exp(-0.5f * x * x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> GeluGrad(Vector512<float> x, Vector512<float> g)
    {
        // erf(x/√2) needs exp(−x²/2), which is also the Gaussian density's: one exp serves both (it dominates the cost).
        var z = x * Vector512.Create(InvSqrt2);
        var a = Vector512.Abs(z);
        var e = Vector512.Exp(-(a * a));
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(ErfP) * a);
        var poly = Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(
            Vector512.Create(A5), t, Vector512.Create(A4)), t, Vector512.Create(A3)), t, Vector512.Create(A2)), t, Vector512.Create(A1)) * t;
        var r = Vector512<float>.One - poly * e;
        var erf = Vector512.ConditionalSelect(Vector512.LessThan(z, Vector512<float>.Zero), -r, r);
        var cdf = Vector512.Create(0.5f) * (Vector512<float>.One + erf);
        return g * (cdf + x * Vector512.Create(InvSqrt2Pi) * e);
    }

    // tanh(x) = 1 − 2/(e^{2x} + 1); the clamp keeps e^{2x} finite (tanh(±10) is ±1 in float).
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Tanh(float x) => MathF.Tanh(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var c = Vector512.Min(Vector512.Max(x, Vector512.Create(-10f)), Vector512.Create(10f));
        var e = Vector512.Exp(c + c);
        return Vector512<float>.One - Vector512.Create(2f) / (e + Vector512<float>.One);
    }
    /// <summary>g·(1 − y²).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float TanhGrad(float y, float g) => g * (1f - y * y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> TanhGrad(Vector512<float> y, Vector512<float> g) => g * (Vector512<float>.One - y * y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
    /// <summary>g·y·(1 − y).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SigmoidGrad(float y, float g) => g * y * (1f - y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> SigmoidGrad(Vector512<float> y, Vector512<float> g) => g * y * (Vector512<float>.One - y);

    /// <summary>x for x &gt; 0, else slope·x (NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LeakyRelu(float x, float slope) => x > 0f ? x : slope * x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LeakyRelu(Vector512<float> x, float slope) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, x * Vector512.Create(slope));
    /// <summary>g for x &gt; 0, else slope·g (PyTorch's rule at 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LeakyReluGrad(float x, float g, float slope) => x > 0f ? g : slope * g;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LeakyReluGrad(Vector512<float> x, Vector512<float> g, float slope) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), g, g * Vector512.Create(slope));

    /// <summary>x·σ(x) (SiLU, swish).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Silu(float x) => x / (1f + MathF.Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Silu(Vector512<float> x) => x / (Vector512<float>.One + Vector512.Exp(-x));
    /// <summary>g·σ(x)·(1 + x·(1 − σ(x))).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SiluGrad(float x, float g) { float s = 1f / (1f + MathF.Exp(-x)); return g * s * (1f + x * (1f - s)); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SiluGrad(Vector512<float> x, Vector512<float> g)
    {
        var s = Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
        return g * s * (Vector512<float>.One + x * (Vector512<float>.One - s));
    }

    /// <summary>x for x &gt; 0, else alpha·(eˣ − 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Elu(float x, float alpha) => x > 0f ? x : alpha * (MathF.Exp(x) - 1f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Elu(Vector512<float> x, float alpha) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, Vector512.Create(alpha) * (Vector512.Exp(Vector512.Min(x, Vector512<float>.Zero)) - Vector512<float>.One));
    /// <summary>g for x &gt; 0, else g·alpha·eˣ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float EluGrad(float x, float g, float alpha) => x > 0f ? g : g * alpha * MathF.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> EluGrad(Vector512<float> x, Vector512<float> g, float alpha) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), g, g * Vector512.Create(alpha) * Vector512.Exp(Vector512.Min(x, Vector512<float>.Zero)));

    /// <summary>|x|; its gradient is sign(x)·g, 0 at 0 (as torch.abs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Abs(float x) => MathF.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Abs(Vector512<float> x) => Vector512.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float AbsGrad(float x, float g) => x > 0f ? g : x < 0f ? -g : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> AbsGrad(Vector512<float> x, Vector512<float> g) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), g,
            Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -g, Vector512<float>.Zero));

    /// <summary>eˣ; its gradient is y·g.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp(float x) => MathF.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => Vector512.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ExpGrad(float y, float g) => y * g;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ExpGrad(Vector512<float> y, Vector512<float> g) => y * g;

    /// <summary>ln x; its gradient is g/x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Log(float x) => MathF.Log(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Log(Vector512<float> x) => Vector512.Log(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LogGrad(float x, float g) => g / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LogGrad(Vector512<float> x, Vector512<float> g) => g / x;

    /// <summary>x·min(max(x + 3, 0), 6)/6.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Hardswish(float x) => x * MathF.Min(MathF.Max(x + 3f, 0f), 6f) / 6f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Hardswish(Vector512<float> x) =>
        x * Vector512.Min(Vector512.Max(x + Vector512.Create(3f), Vector512<float>.Zero), Vector512.Create(6f)) / Vector512.Create(6f);
    /// <summary>0 below −3, g·(x/3 + ½) up to 3, g above (PyTorch's rule at the corners).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HardswishGrad(float x, float g) => x < -3f ? 0f : x <= 3f ? g * (x / 3f + 0.5f) : g;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> HardswishGrad(Vector512<float> x, Vector512<float> g)
    {
        var middle = g * (x / Vector512.Create(3f) + Vector512.Create(0.5f));
        var upper = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512.Create(3f)), middle, g);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(-3f)), Vector512<float>.Zero, upper);
    }

    /// <summary>dst = a + b (residual add), vectorised.</summary>
    public static void Add(Span<float> dst, ReadOnlySpan<float> a, ReadOnlySpan<float> b) => System.Numerics.Tensors.TensorPrimitives.Add(a, b, dst);

    /// <summary>y[r, :] = x[r, :] + row[:] for each of <paramref name="rows"/> rows of <paramref name="cols"/> (a bias, a
    /// single-segment token type); y may be x.</summary>
    public static void AddToEachRow(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> row, int rows, int cols)
    {
        if (row.Length < cols) throw new ArgumentException($"The row vector has {row.Length} floats, needs {cols}.");
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(x.Slice(r * cols, cols), row[..cols], y.Slice(r * cols, cols));
    }

    /// <summary>sum[:] += Σ_r x[r, :] over <paramref name="rows"/> rows of <paramref name="cols"/>: the adjoint of
    /// <see cref="AddToEachRow"/> (a bias or position-embedding gradient).</summary>
    public static void AddRowsInto(Span<float> sum, ReadOnlySpan<float> x, int rows, int cols)
    {
        var d = sum[..cols];
        for (int r = 0; r < rows; r++) System.Numerics.Tensors.TensorPrimitives.Add(d, x.Slice(r * cols, cols), d);
    }

    /// <summary>dst += src, vectorised (gradient fan-in).</summary>
    public static void AddInPlace(Span<float> dst, ReadOnlySpan<float> src) => System.Numerics.Tensors.TensorPrimitives.Add(dst, src, dst);
}

/// <summary>Dropout masks: the fused loop multiplies by the mask forward and backward.</summary>
public static class DropoutKernels
{
    /// <summary>
    /// Dropout2d's mask (<c>nn.Dropout2d</c>, channel dropout): each plane of <paramref name="planeSize"/> values (a
    /// channel of one sample) is 0 with probability p, else 1/(1−p), one draw per plane.
    /// </summary>
    /// <exception cref="ArgumentException">When the mask is not a whole number of planes.</exception>
    public static void FillChannelMask(Span<float> mask, float p, int planeSize, Rng rng)
    {
        if (planeSize <= 0 || mask.Length % planeSize != 0) throw new ArgumentException($"Dropout2d: a mask of {mask.Length} values is not a whole number of {planeSize}-value planes.");
        if (p <= 0f) { mask.Fill(1f); return; }
        float keep = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i += planeSize) mask.Slice(i, planeSize).Fill(rng.NextFloat() < p ? 0f : keep);
    }

    /// <summary>mask[i] = 0 with probability p, else 1/(1−p).</summary>
    /// <remarks>
    /// BERT draws ~8 M of these per step (attention probabilities and three hidden dropouts per layer), so long masks
    /// come from eight xoshiro256** streams in one Vector512 (seeded from <paramref name="rng"/>, so a seed still
    /// fixes the mask), each 64-bit output giving two 24-bit uniforms compared in integers: u &lt; p·2²⁴ is exactly
    /// the scalar path's NextFloat() &lt; p.
    /// </remarks>
    public static void FillMask(Span<float> mask, float p, Rng rng)
    {
        if (p <= 0f) { mask.Fill(1f); return; }
        float keep = 1f / (1f - p);
        int i = 0;
        if (Vector512.IsHardwareAccelerated && mask.Length >= 256)
        {
            var s0 = Lanes(rng); var s1 = Lanes(rng); var s2 = Lanes(rng); var s3 = Lanes(rng);
            var threshold = Vector512.Create((uint)Math.Ceiling(p * (double)(1 << 24)));
            var keepV = Vector512.Create(keep);
            var low24 = Vector512.Create(0xFFFFFFUL);
            for (; i + 16 <= mask.Length; i += 16)
            {
                var x = s1 * Vector512.Create(5UL);
                var r = ((x << 7) | (x >>> 57)) * Vector512.Create(9UL);
                var t = s1 << 17;
                s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 45) | (s3 >>> 19);
                var u = Vector512.Narrow(r >>> 40, (r >>> 8) & low24);
                var dropped = Vector512.LessThan(u, threshold).AsSingle();
                Vector512.StoreUnsafe(Vector512.ConditionalSelect(dropped, Vector512<float>.Zero, keepV), ref mask[i]);
            }
        }
        for (; i < mask.Length; i++) mask[i] = rng.NextFloat() < p ? 0f : keep;
    }

    private static Vector512<ulong> Lanes(Rng rng) =>
        Vector512.Create(rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64(), rng.NextUInt64());
}
