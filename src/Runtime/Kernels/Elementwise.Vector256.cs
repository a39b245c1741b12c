using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// The Vector256 forms of the per-element functions, for CPUs without AVX-512 (most desktops and laptops, AMD before
// Zen 4): there Vector512 is emulated in software, about five times slower than Vector256 on the same core. Same
// formulas as the Vector512 and scalar forms.
public static partial class Elementwise
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Relu(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ReluGrad(Vector256<float> y, Vector256<float> g) => Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<float>.Zero), g, Vector256<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(ErfP) * a);
        var poly = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(
            Vector256.Create(A5), t, Vector256.Create(A4)), t, Vector256.Create(A3)), t, Vector256.Create(A2)), t, Vector256.Create(A1)) * t;
        var r = Vector256<float>.One - poly * Vector256.Exp(-(a * a));
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -r, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Gelu(Vector256<float> x) => Vector256.Create(0.5f) * x * (Vector256<float>.One + Erf(x * Vector256.Create(InvSqrt2)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GeluGrad(Vector256<float> x, Vector256<float> g)
    {
        // erf(x/√2) needs exp(−x²/2), which is also the Gaussian density's: one exp serves both (it dominates the cost).
        var z = x * Vector256.Create(InvSqrt2);
        var a = Vector256.Abs(z);
        var e = Vector256.Exp(-(a * a));
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(ErfP) * a);
        var poly = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(
            Vector256.Create(A5), t, Vector256.Create(A4)), t, Vector256.Create(A3)), t, Vector256.Create(A2)), t, Vector256.Create(A1)) * t;
        var r = Vector256<float>.One - poly * e;
        var erf = Vector256.ConditionalSelect(Vector256.LessThan(z, Vector256<float>.Zero), -r, r);
        var cdf = Vector256.Create(0.5f) * (Vector256<float>.One + erf);
        return g * (cdf + x * Vector256.Create(InvSqrt2Pi) * e);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var c = Vector256.Min(Vector256.Max(x, Vector256.Create(-10f)), Vector256.Create(10f));
        var e = Vector256.Exp(c + c);
        return Vector256<float>.One - Vector256.Create(2f) / (e + Vector256<float>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> TanhGrad(Vector256<float> y, Vector256<float> g) => g * (Vector256<float>.One - y * y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> SigmoidGrad(Vector256<float> y, Vector256<float> g) => g * y * (Vector256<float>.One - y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LeakyRelu(Vector256<float> x, float slope) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, x * Vector256.Create(slope));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LeakyReluGrad(Vector256<float> x, Vector256<float> g, float slope) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), g, g * Vector256.Create(slope));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Silu(Vector256<float> x) => x / (Vector256<float>.One + Vector256.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SiluGrad(Vector256<float> x, Vector256<float> g)
    {
        var s = Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));
        return g * s * (Vector256<float>.One + x * (Vector256<float>.One - s));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Elu(Vector256<float> x, float alpha) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, Vector256.Create(alpha) * (Vector256.Exp(Vector256.Min(x, Vector256<float>.Zero)) - Vector256<float>.One));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> EluGrad(Vector256<float> x, Vector256<float> g, float alpha) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), g, g * Vector256.Create(alpha) * Vector256.Exp(Vector256.Min(x, Vector256<float>.Zero)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Abs(Vector256<float> x) => Vector256.Abs(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> AbsGrad(Vector256<float> x, Vector256<float> g) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), g,
            Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -g, Vector256<float>.Zero));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => Vector256.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ExpGrad(Vector256<float> y, Vector256<float> g) => y * g;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Log(Vector256<float> x) => Vector256.Log(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LogGrad(Vector256<float> x, Vector256<float> g) => g / x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Hardswish(Vector256<float> x) =>
        x * Vector256.Min(Vector256.Max(x + Vector256.Create(3f), Vector256<float>.Zero), Vector256.Create(6f)) / Vector256.Create(6f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HardswishGrad(Vector256<float> x, Vector256<float> g)
    {
        var middle = g * (x / Vector256.Create(3f) + Vector256.Create(0.5f));
        var upper = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256.Create(3f)), middle, g);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(-3f)), Vector256<float>.Zero, upper);
    }
}
