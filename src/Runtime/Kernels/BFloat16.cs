using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

/// <summary>
/// bfloat16 as raw 16-bit patterns: the upper half of a float32 (same exponent range, 8 significant bits). Rounding
/// from float32 is to nearest, ties to even, as PyTorch's <c>.to(torch.bfloat16)</c> and VCVTNEPS2BF16 do; NaNs stay
/// NaN (made quiet), infinities stay infinite. Widening back is exact (a 16-bit shift).
/// </summary>
public static class BFloat16
{
    /// <summary>The bfloat16 nearest to <paramref name="value"/> (ties to even).</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the dropped half is above
        // one half, or equal to it with an odd kept half.
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>The float32 equal to a bfloat16 pattern.</summary>
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>Rounds every value of <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static unsafe void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"BFloat16: destination holds {destination.Length} values, source has {source.Length}.", nameof(destination));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            fixed (float* ps = source) fixed (ushort* pd = destination)
                for (; i + 16 <= source.Length; i += 16) Narrow(FromSingle8(Vector256.Load(ps + i)), FromSingle8(Vector256.Load(ps + i + 8))).Store(pd + i);
        for (; i < source.Length; i++) destination[i] = FromSingle(source[i]);
    }

    /// <summary>8 values rounded as <see cref="FromSingle(float)"/> rounds one (in the low halves of the lanes).</summary>
    internal static Vector256<uint> FromSingle8(Vector256<float> v)
    {
        var bits = v.AsUInt32();
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        var nan = (bits >> 16) | Vector256.Create(0x0040u);
        return Vector256.ConditionalSelect(Vector256.Equals(v, v).AsUInt32(), rounded, nan);
    }

    /// <summary>The low halves of two vectors' lanes as 16 bfloat16 values, in order.</summary>
    internal static Vector256<ushort> Narrow(Vector256<uint> lower, Vector256<uint> upper) => Vector256.Narrow(lower, upper);

    /// <summary>16 bfloat16 values widened to float32 (exact).</summary>
    internal static unsafe Vector512<float> Load16(ushort* p) =>
        (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();
}
