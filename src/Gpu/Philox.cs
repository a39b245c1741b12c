namespace Compiled.Nets.Gpu;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based generator cuRAND
/// and PyTorch's CUDA dropout use: every element's random number is a pure function of (key, counter), so a kernel
/// draws a dropout mask without state, in any order, reproducibly. Callable from kernels and from the host.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four 32-bit outputs for counter (c0, c1, c2, c3) and key (k0, k1), as Random123's philox4x32_10.</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>A uniform float in [0, 1) for element <paramref name="index"/> of stream <paramref name="stream"/>
    /// (an op) under <paramref name="key"/> (a training step): 24 random bits.</summary>
    public static float Uniform(ulong key, long index, int stream)
    {
        var (r, _, _, _) = Block((uint)index, (uint)((ulong)index >> 32), (uint)stream, 0u, (uint)key, (uint)(key >> 32));
        return (r >> 8) * (1f / 16777216f);
    }
}
