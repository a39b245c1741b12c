using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Vector512 reductions and sweeps over one contiguous row (a softmax row, a layer-norm row, a row of logits), each
/// with a scalar tail; the building blocks the row-wise kernels share. Four accumulators hide the add latency.
/// </summary>
internal static unsafe class RowOps
{
    /// <summary>a·b + c: fused where the CPU runs Vector512 natively; without AVX-512, where .NET emulates Vector512 and
    /// emulates its fused multiply-add lane by lane (about three times slower than a multiply and an add), unfused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Vector512.IsHardwareAccelerated ? Vector512.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(float* x, int n)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (n >= 16)
        {
            var a = Vector512.Load(x); var b = a;
            for (i = 16; i + 32 <= n; i += 32) { a = Vector512.Max(a, Vector512.Load(x + i)); b = Vector512.Max(b, Vector512.Load(x + i + 16)); }
            for (; i + 16 <= n; i += 16) a = Vector512.Max(a, Vector512.Load(x + i));
            var v = Vector512.Max(a, b);
            for (int l = 0; l < 16; l++) m = MathF.Max(m, v.GetElement(l));
        }
        for (; i < n; i++) m = MathF.Max(m, x[i]);
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(float* x, int n)
    {
        int i = 0;
        var a = Vector512<float>.Zero; var b = a; var c = a; var d = a;
        for (; i + 64 <= n; i += 64)
        {
            a += Vector512.Load(x + i); b += Vector512.Load(x + i + 16);
            c += Vector512.Load(x + i + 32); d += Vector512.Load(x + i + 48);
        }
        for (; i + 16 <= n; i += 16) a += Vector512.Load(x + i);
        float s = Vector512.Sum((a + b) + (c + d));
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x − mu)², the second pass of a two-pass variance (no cancellation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumSquaredDeviation(float* x, int n, float mu)
    {
        int i = 0;
        var m = Vector512.Create(mu);
        var a = Vector512<float>.Zero; var b = a;
        for (; i + 32 <= n; i += 32)
        {
            var d0 = Vector512.Load(x + i) - m; var d1 = Vector512.Load(x + i + 16) - m;
            a = MultiplyAdd(d0, d0, a); b = MultiplyAdd(d1, d1, b);
        }
        for (; i + 16 <= n; i += 16) { var d0 = Vector512.Load(x + i) - m; a = MultiplyAdd(d0, d0, a); }
        float s = Vector512.Sum(a + b);
        for (; i < n; i++) { float d = x[i] - mu; s += d * d; }
        return s;
    }

    /// <summary>y = exp(x − shift), returns Σ y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ExpShifted(float* y, float* x, int n, float shift)
    {
        int i = 0;
        var s = Vector512.Create(shift);
        var acc = Vector512<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            var e = Vector512.Exp(Vector512.Load(x + i) - s);
            Vector512.Store(e, y + i);
            acc += e;
        }
        float sum = Vector512.Sum(acc);
        for (; i < n; i++) { float e = MathF.Exp(x[i] - shift); y[i] = e; sum += e; }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(float* y, int n, float k)
    {
        int i = 0;
        var kv = Vector512.Create(k);
        for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(y + i) * kv, y + i);
        for (; i < n; i++) y[i] *= k;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        var s0 = Vector512<float>.Zero; var s1 = s0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = MultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
            s1 = MultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), s1);
        }
        for (; i + 16 <= n; i += 16) s0 = MultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
        float s = Vector512.Sum(s0 + s1);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }
}
