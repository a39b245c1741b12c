using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>The block scheduler must hand out every block exactly once, whether the worker is free or busy.</summary>
public unsafe class HelperThreadTests
{
    private struct Marks { public int* Hits; public int* Halves; }

    private static void Mark(void* state, int half, int begin, int end)
    {
        ref var m = ref *(Marks*)state;
        for (int i = begin; i < end; i++) { Interlocked.Increment(ref m.Hits[i]); m.Halves[i] = half; }
        Thread.SpinWait(2000); // blocks long enough for the worker to take some when it is free
    }

    private static (int[] Hits, int[] Halves) Run(int count, int block)
    {
        var hits = new int[count]; var halves = new int[count];
        fixed (int* ph = hits) fixed (int* pv = halves)
        {
            var m = new Marks { Hits = ph, Halves = pv };
            HelperThread.ForBlocks(&Mark, &m, count, block);
        }
        return (hits, halves);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(100, 7)]   // a short last block
    [InlineData(64, 64)]   // one block
    [InlineData(0, 4)]     // nothing to do
    public void ForBlocks_RunsEveryIndexOnce(int count, int block)
    {
        var (hits, halves) = Run(count, block);
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.All(halves, h => Assert.InRange(h, 0, 1)); // (which core took what depends on timing and on other tests)
    }

    private struct Nested { public int Outer; }

    private static void Outer(void* state, int half, int begin, int end)
    {
        // A nested call finds the worker busy (or is the worker): both halves run here, in order.
        var (hits, _) = Run(50, 3);
        Assert.All(hits, h => Assert.Equal(1, h));
        Interlocked.Add(ref ((Nested*)state)->Outer, end - begin);
    }

    [Fact]
    public void ForBlocks_NestedInAnotherCall_StillRunsEveryIndexOnce()
    {
        var n = new Nested();
        HelperThread.ForBlocks(&Outer, &n, 10, 1);
        Assert.Equal(10, n.Outer);
    }
}
