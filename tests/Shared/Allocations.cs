namespace Compiled.Nets.Tests;

/// <summary>Measures managed allocations of a code path in its steady state.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes this thread allocates running <paramref name="step"/> <paramref name="repeats"/> times, the least of
    /// several windows. A path that allocates per call shows in every window; the runtime's own one-off work
    /// (tiered re-JIT, on-stack replacement and their bookkeeping, which land at moments that depend on timing and on
    /// the tests running beside this one) shows in one window at most, so a single clean window proves the path clean.
    /// </summary>
    public static long SteadyState(Action step, int repeats = 3, int windows = 4)
    {
        long least = long.MaxValue;
        for (int w = 0; w < windows && least > 0; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < repeats; i++) step();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
